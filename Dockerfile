# syntax=docker/dockerfile:1
# proptrade: the platform (`proptrade up`) in a container. docs/DEPLOY.md has the build, the run flags and why.
#
#   docker build -t proptrade .
#   docker run --rm --shm-size=1g -p 127.0.0.1:8000:8000 proptrade
#
# Three stages, so that an edit of the sources rebuilds megabytes, not the gigabyte of dependencies:
#  - deps: a compiler, and a virtualenv at /opt/venv with the pinned dependencies and the build's own
#    (setuptools, cffi), read from pyproject.toml; rebuilt only when pyproject.toml changes;
#  - builder: the sources on top, built into one wheel (the C library and the cffi extensions in it);
#  - runtime: the same base without a compiler, the virtualenv of deps, and the wheel installed into it.
# The base is a build argument so a host without a registry builds the same file on a local Debian bookworm
# image with Python 3.11 (scripts/podman_base_image.sh). The project is installed without the dev and rl
# extras: the platform trains nothing, and torch comes only with those.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
# the Debian suite of the base image fixes these versions; the compiler is not in the runtime image
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# cacert: an optional build secret, a CA bundle for hosts whose HTTPS is intercepted (unused elsewhere)
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
print(*p['project']['dependencies'], *p['build-system']['requires'], sep='\n')" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM deps AS builder
COPY setup.py README.md ./
COPY c_engine/ c_engine/
COPY hotpath/ hotpath/
COPY strategies/ strategies/
COPY ml/ ml/
COPY gateway/ gateway/
# --no-deps --no-build-isolation: what the build needs is in the virtualenv already
RUN /opt/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${BASE_IMAGE} AS runtime
# one user for every process of the platform and for the strategy containers beside it: the shared-memory
# segments and the run directory are 0600/0700, their owner's alone
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent proptrade \
    && install -d -o proptrade -g proptrade -m 0700 /run/proptrade \
    && install -d -o proptrade -g proptrade -m 0700 /var/lib/proptrade
COPY --from=deps /opt/venv /opt/venv
# the wheel is copied, not bind-mounted from the builder (podman 4.3's buildah does not find a stage's files
# to mount); python -I: the import check sees the installed packages, not a directory of sources
COPY --from=builder /wheels/ /tmp/wheels/
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --disable-pip-version-check /tmp/wheels/proptrade-*.whl \
    && rm -rf /tmp/wheels \
    && /opt/venv/bin/python -I -c "import c_engine, hotpath, gateway.server, strategies.agent"
COPY deploy/platform.toml /etc/proptrade/platform.toml
# PROPTRADE_RUN_DIR: the run directory (control socket, operator key) in a path a volume can share with
# another container (deploy/compose.yaml); the default /tmp/proptrade-UID would be private to this one
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PROPTRADE_RUN_DIR=/run/proptrade
# by number, so a runtime that checks for a non-root user (runAsNonRoot) can tell without the image's passwd
USER 10001:10001
WORKDIR /var/lib/proptrade
# /var/lib/proptrade (the journal) and /run/proptrade (the run directory) are where volumes go, named where the
# container is run (docs/DEPLOY.md); no VOLUME here: it gives an anonymous volume to every container that mounts
# nothing there (a strategy container beside the platform), which `podman-compose down -v` then leaves behind
EXPOSE 8000
# /health answers without an API key; python's urllib, as the slim base has no curl
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# the launcher stops its children in order on SIGTERM (docker stop) and removes the run's segments
STOPSIGNAL SIGTERM
ENTRYPOINT ["proptrade"]
CMD ["up", "--config", "/etc/proptrade/platform.toml", "--prefix", "pt_ct"]
