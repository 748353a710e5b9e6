#!/usr/bin/env bash
# qualflow end to end on data/demo: `make demo` runs this in a fresh temporary project.
# Usage: scripts/demo.sh [PROJECT_DIR]   (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${QUALFLOW_PYTHON:-.venv/bin/python}"
DIR="${1:-$(mktemp -d)/demo-project}"
qf() { "$PY" -m pipeline.cli --project "$DIR" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A new project"
"$PY" -m pipeline.cli init "$DIR" --name "Network governance in social security (demo)"

step "2. Ingest 9 interviews (txt, Markdown, Otter, docx, WebVTT, SRT, Persian) with participant metadata"
qf ingest data/demo/transcripts --metadata data/demo/metadata.csv

step "3. The paradigm codebook and two coders' codings"
qf codebook import data/demo/codebook.yaml
qf codings import data/demo/codings.csv
qf summary

step "4. Embed, suggest codes from the codebook, discover candidate open codes"
qf embed
qf suggest
qf suggestions show --top 10
qf discover

step "5. Inter-coder agreement of the two coders (terminal and HTML)"
qf agreement --n-boot 1000
qf agreement --format html --out "$DIR/agreement.html"

step "6. The project report"
qf report --out "$DIR/report"

step "Done"
echo "Project:           $DIR"
echo "Agreement report:  $DIR/agreement.html"
echo "Project report:    $DIR/report/report.html"
