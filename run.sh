#!/usr/bin/env bash
# One entry point for every stage of the project: ./run.sh STAGE [ARGS...]
# Every stage first makes sure .venv exists and matches requirements.txt, so nothing needs to be
# activated or installed by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLER_DIR="$PWD"  # where the user typed the command: their relative paths start here
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Stage table: name, the command behind it (what `STAGE --help` shows) and what it does, in the
# order `help` prints them. One convention for every stage: checkpoints come first, as positional
# arguments; then other inputs (audio files, folders); a data root is --root DIR, splits are
# --split NAME..., an output folder is --out DIR, a language model is --lm ARPA; training stages take
# [CONFIG.json] [key=value ...].
STAGES=(
  "help||list the stages"
  "setup||create .venv and install requirements.txt (skipped when nothing changed)"
  "test|pytest|run the test suite: test [PYTEST ARGS]"
  "data|corpora.synth|make the synthetic corpora under data/ if absent: data [--force] [--seed N] [--only CORPUS ...] [--scale F] [--set FIELD=VALUE ...]"
  "download|corpora.download|fetch a real dataset or LM: download librispeech|speech_commands|librispeech_lm [DEST]"
  "asr_clean|asr.train configs/asr/clean.json|train DeepSpeech2 on train-clean, evaluate on test-clean: asr_clean [CONFIG.json] [key=value ...]"
  "asr_other|asr.train configs/asr/other.json|fine-tune asr_clean's model on train-other with noise: asr_other [CONFIG.json] [key=value ...]"
  "asr|asr.train configs/asr/clean.json|asr_clean then asr_other: asr [CONFIG.json] [key=value ...] (for asr_clean)"
  "asr_ko|asr.train configs/asr/ko.json|train DeepSpeech2 on the Korean KsponSpeech-layout corpus: asr_ko [CONFIG.json] [key=value ...]"
  "asr_experiments|asr.experiments|experiment tables (features, models, units): asr_experiments [EXPERIMENT.json ...] [key=value ...] [--no-train]"
  "asr_eval|asr.evaluate|CER/WER of greedy, beam, beam+LM: asr_eval CHECKPOINT [--split S ...] [--root DIR] [--out DIR] [--lm ARPA]"
  "asr_lm|asr.lm|train the word 3-gram LM on the corpus's LM text: asr_lm [--order N] [--top-words N | --vocab FILE] [--prune C2 C3]"
  "asr_lm_tune|asr.lm_tune|grid-search LM weight and word bonus: asr_lm_tune CHECKPOINT [--split S] [--lm ARPA]"
  "transcribe|asr.transcribe|print the text of audio files: transcribe CHECKPOINT FILE|FOLDER... [--json] [--plot] [--lm ARPA]"
  "kws_baseline|kws.train configs/kws/baseline.json|train the KWS CRNN (keyword sheila): kws_baseline [CONFIG.json] [key=value ...]"
  "kws_eval|kws.evaluate|au-fa-fr and costs of a KWS checkpoint: kws_eval CHECKPOINT [--root DIR] [--split S] [--out DIR] [--plot N]"
  "kws_compare|kws.compare|KWS checkpoints side by side with bootstrap intervals: kws_compare CHECKPOINT... [--root DIR] [--split S ...]"
  "kws_stream|kws.demo|stream a demo track, a wav or the mic: kws_stream [CHECKPOINT] [--wav FILE] [--mic] [--threshold T]"
  "kws_distill|kws.distill configs/kws/distill.json|distil and prune KWS students, then the compression report: kws_distill [CONFIG.json] [key=value ...]"
  "kws_quantize|kws.compress|fp16 / int8 versions of every KWS model and the compression report: kws_quantize [NAME=CHECKPOINT ...] [--runs N]"
  "tensorboard|tensorboard.main|serve the runs' TensorBoard event files on 127.0.0.1: tensorboard [LOGDIR]"
)

stage_help() {
  echo "usage: ./run.sh STAGE [ARGS...]   (./run.sh STAGE --help: that stage's arguments)"
  echo
  echo "stages:"
  local entry rest
  for entry in "${STAGES[@]}"; do
    rest="${entry#*|}"
    printf "  %-16s %s\n" "${entry%%|*}" "${rest#*|}"  # the description may hold '|' itself
  done
}

# `./run.sh STAGE --help` (or -h, anywhere in the arguments): the stage's line, then the usage of
# the command behind it (for training stages: every config key, type, value and meaning). Nothing
# runs but setup.
stage_usage() {
  local stage="$1" entry command="" config
  shift
  for entry in "${STAGES[@]}"; do
    if [[ "${entry%%|*}" == "$stage" ]]; then
      command="${entry#*|}"
      echo "./run.sh $stage: ${command#*|}"
      command="${command%%|*}"
    fi
  done
  [[ -n "$command" ]] || return 0
  local module="${command%% *}"
  config="${command#"$module"}"
  config="${config# }"
  if [[ -n "$config" && $# -gt 0 && "$1" == *.json ]]; then
    config="$1"  # the user's config: --help shows its values
  fi
  echo "runs: python -m $module${config:+ $config} [ARGS]"
  echo
  "$PY" -m "$module" ${config:+"$config"} --help
}

# The stamp holds a hash of requirements.txt and the interpreter version: an unchanged file installs
# nothing, a changed one (or another Python) reinstalls.
requirements_stamp() {
  { cat requirements.txt; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1
}

stage_setup() {
  local want have=""
  want="$(requirements_stamp)"
  [[ -f "$VENV/.requirements.sha256" ]] && have="$(cat "$VENV/.requirements.sha256")"
  if [[ -x "$PY" && "$want" == "$have" ]]; then
    return 0
  fi
  echo "[setup] installing requirements.txt into .venv (first run takes about two minutes)"
  if [[ ! -x "$PY" ]]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local log="$VENV/pip-install.log"
  if ! "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    echo "[setup] pip install -r requirements.txt failed (log: $log)" >&2
    exit 1
  fi
  "$PY" -c "import torch, torchaudio, soundfile, kenlm, espeakng_loader, tokenizers, thop" \
    || { echo "[setup] installed packages do not import; see the messages above" >&2; exit 1; }
  echo "$want" > "$VENV/.requirements.sha256"
  echo "[setup] done: $("$PY" -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)')"
}

stage_test() {
  "$PY" -m pytest -q "$@"
}

stage_data() {
  "$PY" -m corpora.synth --root data "$@"
}

stage_download() {
  "$PY" -m corpora.download "$@"
}

# Training stages take an optional config file first, then key=value overrides.
config_and_overrides() {
  local default="$1"
  shift
  if [[ $# -gt 0 && "$1" == *.json ]]; then
    printf '%s\n' "$@"
  else
    printf '%s\n' "$default" "$@"
  fi
}

# A config (and the checkpoint its init_from names) is validated before any data is made.
check_config() {
  local module="$1"
  shift
  "$PY" -m "$module" --check "$@"
}

stage_asr_clean() {
  local args
  mapfile -t args < <(config_and_overrides configs/asr/clean.json "$@")
  check_config asr.train "${args[@]}"
  stage_data --only librispeech
  train_asr "${args[@]}"
}

stage_asr_other() {
  local args
  mapfile -t args < <(config_and_overrides configs/asr/other.json "$@")
  check_config asr.train "${args[@]}"  # also: init_from (asr_clean's model) exists
  stage_data --only librispeech speech_commands  # speech_commands: its _background_noise_ folder
  train_asr "${args[@]}"
}

stage_asr() {
  stage_asr_clean "$@"
  stage_asr_other
}

stage_asr_ko() {
  local args
  mapfile -t args < <(config_and_overrides configs/asr/ko.json "$@")
  check_config asr.train "${args[@]}"
  stage_data --only kspon
  train_asr "${args[@]}"
}

# Tables 1-2 train on the Korean corpus, table 3 on the LibriSpeech one with its word LM.
stage_asr_experiments() {
  check_config asr.experiments "$@"
  stage_data --only kspon librispeech
  [[ -f "$LM_ARPA" ]] || stage_asr_lm
  "$PY" -m asr.experiments "$@"
}

# NPROC=2 ./run.sh asr_clean trains with torchrun + DDP on 2 processes (gloo on CPU, nccl on GPU).
train_asr() {
  if [[ "${NPROC:-1}" -gt 1 ]]; then
    "$VENV/bin/torchrun" --standalone --nproc_per_node "$NPROC" -m asr.train "$@"
  else
    "$PY" -m asr.train "$@"
  fi
}

stage_asr_eval() {
  "$PY" -m asr.evaluate "$@"
}

stage_asr_lm() {
  "$PY" -m asr.lm --check "$LM_TEXT" "$LM_ARPA" "$@"
  [[ -f "$LM_TEXT" ]] || stage_data --only librispeech
  "$PY" -m asr.lm "$LM_TEXT" "$LM_ARPA" "$@"
}

# The corpus's LM (made if absent) unless the user names their own with --lm.
stage_asr_lm_tune() {
  local lm=(--lm "$LM_ARPA") arg
  for arg in "$@"; do
    [[ "$arg" == --lm || "$arg" == --lm=* ]] && lm=()
  done
  "$PY" -m asr.lm_tune --check "$@" "${lm[@]}"
  [[ ${#lm[@]} -eq 0 || -f "$LM_ARPA" ]] || stage_asr_lm
  "$PY" -m asr.lm_tune "$@" "${lm[@]}"
}

stage_transcribe() {
  "$PY" -m asr.transcribe "$@"
}

stage_kws_baseline() {
  local args
  mapfile -t args < <(config_and_overrides configs/kws/baseline.json "$@")
  check_config kws.train "${args[@]}"
  stage_data --only speech_commands
  "$PY" -m kws.train "${args[@]}"
}

stage_kws_eval() {
  "$PY" -m kws.evaluate "$@"
}

stage_kws_compare() {
  "$PY" -m kws.compare "$@"
}

stage_kws_stream() {
  "$PY" -m kws.demo "$@"
}

stage_kws_distill() {
  local args
  mapfile -t args < <(config_and_overrides configs/kws/distill.json "$@")
  check_config kws.distill "${args[@]}"
  [[ -f "$KWS_BASELINE" ]] || stage_kws_baseline  # the teacher
  "$PY" -m kws.distill "${args[@]}"
}

# TensorBoard over the run folders (each holds its event files next to metrics.jsonl), this machine only.
stage_tensorboard() {
  "$PY" -m tensorboard.main --logdir "${1:-logs}" --host 127.0.0.1 "${@:2}"
}

stage_kws_quantize() {
  check_config kws.compress "$@"
  [[ -f "$KWS_BASELINE" ]] || stage_kws_baseline
  "$PY" -m kws.compress "$@"
}

# Paths a user types are relative to the folder they typed them in, while stages run in the
# repository root: from elsewhere, every argument that looks like a relative path (it holds a '/'
# or names something in the caller's folder), alone or as the value of key=... or --flag=..., is
# made absolute. From the repository root nothing changes.
absolute_path() {
  if [[ "$1" != /* && "$1" != *://* && ( "$1" == */* || -e "$CALLER_DIR/$1" ) ]]; then
    printf '%s\n' "$CALLER_DIR/$1"
  else
    printf '%s\n' "$1"
  fi
}

caller_paths() {
  local arg
  for arg in "$@"; do
    if [[ "$CALLER_DIR" == "$ROOT" ]] || [[ "$arg" == -* && "$arg" != *=* ]]; then
      printf '%s\n' "$arg"
    elif [[ "$arg" == *=* && "${arg%%=*}" != */* ]]; then  # key=VALUE or --flag=VALUE
      printf '%s=%s\n' "${arg%%=*}" "$(absolute_path "${arg#*=}")"
    else
      absolute_path "$arg"
    fi
  done
}

main() {
  local stage="${1:-help}"
  shift || true
  local entry known=""
  for entry in "${STAGES[@]}"; do
    [[ "${entry%%|*}" == "$stage" ]] && known=1
  done
  if [[ -z "$known" ]]; then
    echo "unknown stage '$stage'" >&2
    stage_help >&2
    exit 2
  fi
  if [[ "$stage" == "help" ]]; then
    stage_help
    return 0
  fi
  stage_setup
  [[ "$stage" == "setup" ]] && return 0
  local arg
  for arg in "$@"; do
    if [[ "$arg" == -h || "$arg" == --help ]]; then
      stage_usage "$stage" "$@"
      return 0
    fi
  done
  local args=()
  mapfile -t args < <(caller_paths "$@")
  set -- "${args[@]}"
  # ASR_CLEAN, LM_TEXT, LM_ARPA, KWS_BASELINE, ...: every artifact path, named in common/artifacts.py.
  eval "$("$PY" -m common.artifacts)"
  "stage_$stage" "$@"
}

main "$@"
