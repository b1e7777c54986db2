# Sourced by tests/run and ./demo: creates or refreshes the project's Python virtualenv
# (the stand-ins' dependencies and cargo-lambda, pinned in tests/requirements.txt) and
# exports EKS_LB_DOCTOR_PYTHON. Run from the repository root.
venv="${EKS_LB_DOCTOR_VENV:-$HOME/.cache/eks-lb-doctor/venv}"
stamp="$venv/.requirements"
if ! cmp -s tests/requirements.txt "$stamp" 2>/dev/null || ! "$venv/bin/python" -c 'import moto' 2>/dev/null; then
  echo "preparing the Python virtualenv at $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$stamp"
fi
export EKS_LB_DOCTOR_PYTHON="$venv/bin/python"
export PATH="$venv/bin:$PATH"
