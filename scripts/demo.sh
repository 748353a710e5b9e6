#!/usr/bin/env bash
# qualflow end to end on data/demo: `make demo` runs this in a fresh temporary project.
# Usage: scripts/demo.sh [PROJECT_DIR]   (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${QUALFLOW_PYTHON:-.venv/bin/python}"
DIR="${1:-$(mktemp -d)/demo-project}"
qf() { "$PY" -m cli --project "$DIR" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A new project"
"$PY" -m cli init "$DIR" --name "Network governance in social security (demo)"

step "2. Ingest 9 interviews (txt, Markdown, Otter, docx, WebVTT, SRT, Persian) with participant metadata"
qf ingest data/demo/transcripts --metadata data/demo/metadata.csv

step "3. The paradigm codebook and two coders' codings"
qf codebook import data/demo/codebook.yaml
qf codings import data/demo/codings.csv
qf summary

step "4. Inter-coder agreement of the two coders (terminal and HTML)"
qf agreement
qf agreement --format html --out "$DIR/agreement.html"

step "5. Prefect flow process_interviews: embed, suggest (zero-shot prototypes: no champion yet), discover open codes"
qf process data/demo/transcripts
qf suggestions show --top 8

step "6. Prefect flow retrain_suggester: train on the coders' codings, evaluate on held-out interviews, MLflow, gate"
qf train

step "7. The champion model suggests for a new interview dropped into the inbox"
cp data/demo/later/int10.txt "$DIR/inbox/"
qf process
qf agreement --log

step "8. Coding rounds: R1 on int01-int02, then the codebook is sharpened, R2 on int03 (agreement per round to MLflow)"
qf round start R1
qf assign --coder sara --coder reza --source int01 --source int02
qf round close --n-boot 200
qf codebook import data/demo/codebook_round2.yaml
qf round start R2
qf assign --coder sara --coder reza --source int03
qf round close --n-boot 200

step "9. How well the default suggester agrees with the coders (grouped cross-validation)"
qf evaluate

step "10. The project report"
qf report --out "$DIR/report"

step "11. Other shapes of data: a focus-group table split by session, an RTF interview, codes from a table column"
qf split data/demo/more/focus_groups.csv --by session --out "$DIR/focus-groups"
qf ingest "$DIR/focus-groups" data/demo/more/int11.rtf
qf codings import-table "$DIR/focus-groups" --code-column code --coder sara
qf sources

step "Done"
echo "Project:           $DIR"
echo "Agreement report:  $DIR/agreement.html"
echo "Project report:    $DIR/report/report.html"
echo "MLflow runs:       $PY -m cli ui mlflow --project $DIR   (then http://127.0.0.1:5000, experiment 'qualflow', model 'qualflow-suggester'; rounds in 'qualflow-rounds')"
echo "Review app:        $PY -m cli review --project $DIR --single-user sara   (then http://127.0.0.1:8000)"
