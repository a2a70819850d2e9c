# One image for every process of the product: `emailengine serve <service>`, `worker`, `scheduler`, `gateway`.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY requirements.txt pyproject.toml Makefile ./
COPY tools ./tools
COPY protos ./protos
COPY libs ./libs
COPY services ./services
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/* \
    && make gen PYTHON=python3 \
    && useradd --uid 10001 --no-create-home email-engine
USER 10001
ENV EE_DATA_DIR=/tmp/email-engine EE_BIND_HOST=0.0.0.0
ENTRYPOINT ["/app/.venv/bin/emailengine"]
