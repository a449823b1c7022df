# The newsmon image: one image for every way of running it (deploy/compose, deploy/k8s, a plain
# `docker run`). It sits at the repository root because its build context is the root anyway
# (pyproject.toml, newsmon/, pipeline/, connectors/, config/), so `docker build -t newsmon .` needs no
# flags, and the allow-list in .dockerignore (which must sit at the context root) keeps .venv,
# .services and build/ out of the context.
#
#   docker build -t newsmon:0.1.0 .
#   docker run --rm newsmon:0.1.0 doctor
#
# The `harness` target is the Beam SDK harness image a cluster runner (Flink, Spark, Dataflow)
# starts for the Python stages with --environment_type=DOCKER (deploy/flink/README.md):
#
#   docker build --target harness -t newsmon-harness:0.1.0 .
#
# Beam's version is pinned here, for both images: the harness must run the Beam version of the
# SDK that submits the job (the newsmon image's), and its base image is Beam's own for that
# version and this Python (tests/deploy/test_harness_image.py checks them against pyproject
# and the interpreter the tests run on).
ARG BEAM_VERSION=2.77.0
FROM python:3.11-slim AS build
ARG BEAM_VERSION
# The Rust toolchain (from the official image) and a C linker, for the compiled detection core
# (native/); they stay in this stage: the others install its wheel.
COPY --from=rust:1.95-slim /usr/local/cargo /usr/local/cargo
COPY --from=rust:1.95-slim /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY native native
COPY pyproject.toml README.md ./
# Every folder of pyproject's package-dir: the kernel, both halves, and config/ (the wheel
# carries it as package data newsmon.shipped, so `newsmon run --demo` works in the image).
COPY newsmon newsmon
COPY pipeline pipeline
COPY connectors connectors
COPY config config
# Wheels for newsmon and every dependency (newsmon-native from ./native), resolved with the
# pinned Beam; the runtime and harness stages install them without a compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./native . "apache-beam==${BEAM_VERSION}"

# The SDK harness: Beam's worker image of the pinned version, with newsmon (the DoFns are
# unpickled there) and the shipped config. Its entrypoint stays Beam's /opt/apache/beam/boot,
# which the runner starts; Beam is already installed in it and satisfies newsmon's pin, so
# only newsmon and the dependencies Beam lacks come from the wheels.
FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS harness
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels newsmon && rm -rf /wheels
COPY config /etc/newsmon
ENV NEWSMON_CONFIG_DIR=/etc/newsmon \
    PYTHONUNBUFFERED=1

FROM python:3.11-slim
RUN useradd --system --uid 10001 --gid 0 --home-dir /var/lib/newsmon --create-home newsmon
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The shipped config; Compose and Kubernetes mount their own over /etc/newsmon.
COPY config /etc/newsmon
# Every NEWSMON_* variable is a setting (docs/settings.md); these make the image's layout the
# default. Secrets are never baked in: they come from the environment at run time.
ENV NEWSMON_CONFIG_DIR=/etc/newsmon \
    NEWSMON_STATE_DIR=/var/lib/newsmon \
    NEWSMON_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /var/lib/newsmon
VOLUME ["/var/lib/newsmon"]
# Metrics: 9464 for `newsmon poll`, 9465 for `newsmon pipeline run --mode stream`, when given
# --metrics-port and --metrics-host 0.0.0.0.
EXPOSE 9464 9465
ENTRYPOINT ["newsmon"]
CMD ["--help"]
