# syntax=docker/dockerfile:1
#
# Airflow image for jit-audit-export: the official Apache Airflow image, plus the pinned runtime
# requirements and this project (jit_audit, jit_audit_airflow and the `jit-audit` script) installed
# at build time. Installing at container start (_PIP_ADDITIONAL_REQUIREMENTS) is for quick tries
# only: https://airflow.apache.org/docs/docker-stack/build.html
#
# Stages:
#   runtime  what the scheduler, dag-processor, triggerer and api-server run
#   dev      runtime + requirements-dev.txt (moto[server], ...): the local AWS emulator only
#
#   docker compose build                                   (builds both, as docker-compose.yaml uses them)
#   docker build --target runtime -t jit-audit-export/airflow:3.3.2-python3.11 .
#
# Keep the base image's Airflow version equal to the apache-airflow pin in requirements.txt
# (tests/test_docker_compose.py checks it), and its Python to one pyproject.toml allows.

FROM apache/airflow:3.3.2-python3.11 AS runtime

# Build directory for the project, and the two directories docker-compose.yaml keeps in named
# volumes (a new named volume copies the owner and mode of the image's directory). Group 0 and
# group-writable, as the official image does, so any UID with GID 0 can use them.
USER root
RUN install -d -o airflow -g 0 -m 0775 /opt/jit-audit-export /opt/airflow/config /opt/airflow/logs
USER airflow
WORKDIR /opt/jit-audit-export

# Dependencies first (their layer is reused until a pin changes). requirements.txt pins
# apache-airflow itself, so pip cannot up- or downgrade the image's Airflow.
COPY --chown=airflow:0 requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

# The project itself, without dependencies (all installed above, at the pinned versions).
COPY --chown=airflow:0 pyproject.toml ./
COPY --chown=airflow:0 include/ ./include/
COPY --chown=airflow:0 plugins/ ./plugins/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build

WORKDIR /opt/airflow

# Local development only: adds the AWS emulator's dependencies (moto[server]) and the test tools.
# Never deploy this stage.
FROM runtime AS dev

WORKDIR /opt/jit-audit-export
COPY --chown=airflow:0 requirements-dev.txt ./
RUN pip install --no-cache-dir -r requirements-dev.txt -c constraints.txt
WORKDIR /opt/airflow
