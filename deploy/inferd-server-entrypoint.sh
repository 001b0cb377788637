#!/bin/sh
# Default entry point of the inferd image, shaped like TF Serving's: serves one model,
# ${MODEL_BASE_PATH}/${MODEL_NAME} (defaults /models/model), on gRPC 8500 and REST 8501. Extra
# arguments are passed on to inferd-server; with --model_config_file among them the config file
# names the models and MODEL_NAME/MODEL_BASE_PATH are not used.
#
#   docker run -p 8500:8500 -p 8501:8501 -v "$PWD/models/zoo/digits:/models/digits:ro" \
#       -e MODEL_NAME=digits inferd
#
# The gateway runs from the same image with the command replaced: `inferd-gateway --flag=...`.
set -eu

MODEL_NAME="${MODEL_NAME:-model}"
MODEL_BASE_PATH="${MODEL_BASE_PATH:-/models}"

for arg in "$@"; do
  case "$arg" in
    --model_config_file|--model_config_file=*|-model_config_file|-model_config_file=*)
      exec inferd-server --port=8500 --rest_api_port=8501 "$@"
      ;;
  esac
done
exec inferd-server --port=8500 --rest_api_port=8501 --model_name="${MODEL_NAME}" \
  --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
