# Sourced by every eval/*.sh script: strict mode, the repository root as the working folder,
# and R, the ragsys command installed by `make install`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
R=.venv/bin/ragsys
