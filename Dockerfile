# CUDA image for A100 (and other NVIDIA) GPUs:
#   docker build -t ilora-dllm2rec:latest .
#   docker run -d --name ilora-dev-container -v "$(pwd)":/workspace -w /workspace --gpus all \
#       --shm-size=16g -it ilora-dllm2rec:latest
#   docker exec -it ilora-dev-container ./cmd/run_all_pipeline.sh experiment=a100
#
# Why python:3.11-slim and not an nvidia/cuda or pytorch/pytorch base: the PyTorch wheels pinned in
# requirements.lock carry their own CUDA runtime, cuDNN and NCCL (the nvidia-* packages of the lock),
# and `--gpus all` (NVIDIA Container Toolkit) brings the host's driver. A CUDA base image would add
# a second, unused CUDA copy; a pytorch/pytorch base would bring a torch other than the one CI tests.
# Installing from the hashed lock with --require-hashes gives the exact versions CI checks.
# The lock's torch uses CUDA 13 (host driver >= 580). For an older driver, build with a torch from
# PyTorch's CUDA 12 wheel index (the URL ending in /whl/cu126 on the PyTorch website):
#   docker build --build-arg TORCH_INDEX_URL=<that URL> -t ilora-dllm2rec:cu126 .
# which installs that torch first and the rest from requirements-cpu.lock (the lock without CUDA packages).
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=""
# ILORA_PYTHON: the cmd/ scripts use this image's Python, never a host .venv that the bind mount brings in
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ILORA_PYTHON=python

# git: each run records its commit in git_info.txt; the bind-mounted checkout belongs to the host user.
# g++: torch.compile (teacher.compile=true, on in experiment=ml100k_cpu) builds its CPU kernels and Triton's
# GPU launchers with it
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git g++ \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory /workspace

WORKDIR /workspace

# dependencies first (cached while only the code changes)
COPY requirements.lock requirements-cpu.lock requirements-llm.lock ./
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        torch_version="$(sed -n 's/^torch==\([^ ]*\) .*/\1/p' requirements.lock)" \
        && pip install --index-url "$TORCH_INDEX_URL" "torch==${torch_version}" \
        && pip install --require-hashes -r requirements-cpu.lock; \
    else \
        pip install --require-hashes -r requirements.lock; \
    fi \
    && pip install --no-deps --require-hashes -r requirements-llm.lock

# the project itself, editable: a checkout bind-mounted over /workspace (docker run -v) is what runs
COPY . .
RUN pip install --no-deps -e .

CMD ["bash"]
