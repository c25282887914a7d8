# The ledger fault test on a real PostgreSQL server (see ledger_faults.bash).
FAULTS_ENGINE=postgresql source "$(dirname "$0")/ledger_faults.bash"
