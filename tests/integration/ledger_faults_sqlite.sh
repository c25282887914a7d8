# The ledger fault test on the embedded SQLite store (see ledger_faults.bash).
FAULTS_ENGINE=sqlite source "$(dirname "$0")/ledger_faults.bash"
