# mockpanel's servers, headless, on the seeds' ports: one image for any language's test suite.
#   docker build -t mockpanel .                       (anywhere: Python from the python:3.12-slim image, packages from PyPI)
#   make image                                        (here: a Debian-made base and a wheelhouse made on the host; no registry)
#   docker run --rm -p 127.0.0.1:8000:8000 -p 127.0.0.1:9000:9000 -v mockpanel-data:/data mockpanel
# What it serves and who can reach it: docs/containers.md.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
LABEL mockpanel.stage=build
# With build/wheels in the context (make image puts a wheelhouse there) nothing is fetched; without it, pip uses PyPI.
COPY pyproject.toml README.md /src/
COPY mockpanel /src/mockpanel
COPY build/wheel[s] /src/wheels
RUN python3 -m venv /opt/mockpanel \
 && if ls /src/wheels/mockpanel-*.whl >/dev/null 2>&1; then \
      /opt/mockpanel/bin/pip install --no-cache-dir --no-index --find-links /src/wheels mockpanel; \
    else \
      /opt/mockpanel/bin/pip install --no-cache-dir /src; \
    fi \
 && /opt/mockpanel/bin/python -m pip uninstall -q -y pip setuptools \
 && find /opt/mockpanel -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/mockpanel/bin/python -m compileall -q /opt/mockpanel/lib

FROM ${BASE}
COPY --from=build /opt/mockpanel /opt/mockpanel
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home mockpanel \
 && mkdir -p /data /config \
 && chown mockpanel:mockpanel /data /config
ENV PATH=/opt/mockpanel/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MOCKPANEL_HOST=0.0.0.0 \
    MOCKPANEL_STATE_DIR=/tmp/mockpanel \
    MOCKPANEL_PORTS_FILE=/tmp/mockpanel/ports.json \
    MOCKPANEL_S3_DATA_DIR=/data/s3 \
    MOCKPANEL_AUTH_OIDC_KEYS_DIR=/data/oidc-keys
# /data: S3's buckets and the OIDC signing keys, kept across restarts. /config: mockpanel.toml (stub servers'
# [stubs.NAME] tables, their mappings and OpenAPI documents beside it), read from the working directory.
VOLUME ["/data"]
WORKDIR /config
USER mockpanel
# auth, s3, webhooks, client app, the reference image API; stub servers take the ports their tables name.
EXPOSE 8000 9000 4000 3000 8002
# Every 2 s, a standard-library check (python -m mockpanel.health: ~0.1 s of CPU) that every server answers.
HEALTHCHECK --interval=2s --timeout=3s --start-period=60s --retries=3 CMD ["python", "-m", "mockpanel.health"]
ENTRYPOINT ["mockpanel"]
CMD ["serve"]
