# syntax=docker/dockerfile:1
# Rendered by matrix from standard.Dockerfile.j2 for prefect-python3.10: edit the template, not this file.
ARG PYTHON_VERSION="3.10"
ARG PREFECT_VERSION="2.11.5"

FROM docker.io/library/python:${PYTHON_VERSION}-slim
ARG PREFECT_VERSION
ARG PREFECT_EXTRAS
ARG EXTRA_PIP_PACKAGES

ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    MATRIX_EXTRA_INSTALLER=pip

# The line's system packages (versions.toml `contents.system_packages`): tini reaps the
# zombies a flow's subprocesses leave behind, git serves git_clone pull steps and
# flow.from_source, build-essential builds what EXTRA_PIP_PACKAGES compiles. Their
# versions are those of the base image's Debian release: a pin would break when the
# base moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tini build-essential git \
    && rm -rf /var/lib/apt/lists/*

# The cell's lock: prefect at the planned version with the line's extras,
# EXTRA_PIP_PACKAGES, every dependency pinned with its hashes as of the
# release. pip installs exactly that and resolves nothing; the image keeps the lock
# for its users. With SOURCE_DATE_EPOCH set, pip writes bytecode checked against the
# source's hash, not its time: the build sets every file's time to the image's epoch,
# which would leave time-checked .pyc files stale and every start compiling again.
ARG TARGETARCH
COPY install/ /tmp/matrix-install/
RUN mkdir -p /opt/prefect \
    && cp "/tmp/matrix-install/requirements-${TARGETARCH}.lock" /opt/prefect/requirements.lock \
    && SOURCE_DATE_EPOCH=1691150000 pip install --no-cache-dir --require-hashes --no-deps \
        --requirement /opt/prefect/requirements.lock \
    && rm -rf /tmp/matrix-install

LABEL io.prefect.flavor="standard" \
      io.prefect.matrix.resolved-as-of="2023-08-24T20:02:09Z" \
      io.prefect.python-version="3.10" \
      org.opencontainers.image.created="2023-08-04T11:53:20Z" \
      org.opencontainers.image.revision="a597971f7156" \
      org.opencontainers.image.source="https://github.com/PrefectHQ/prefect" \
      org.opencontainers.image.version="2.11.5"

# What Helm charts and workers start by path: EXTRA_PIP_PACKAGES at start, a conda
# image's env, a banner and login shell with no command, else the command.
COPY entrypoint.sh /opt/prefect/entrypoint.sh

# The smoke test: an image whose prefect cannot start is never pushed.
RUN prefect version

WORKDIR /opt/prefect
# No CMD: with no command the entrypoint opens a login shell.
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"]
