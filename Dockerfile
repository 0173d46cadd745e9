# syntax=docker/dockerfile:1
#
# Airflow image for jit-audit-export: the official Apache Airflow image plus the pinned runtime
# requirements, this project (jit_audit, jit_audit_airflow, the `jit-audit` script) with its
# compiled C fast path, and the DAG files. Everything is installed at build time; installing at
# container start (_PIP_ADDITIONAL_REQUIREMENTS) is for quick tries only:
# https://airflow.apache.org/docs/docker-stack/build.html
#
# Stages:
#   build    compiler + Python headers: builds the project's wheel, with include/jit_audit/_speedups.c
#            compiled, and fails if the extension did not build (setup.py marks it optional, so
#            pip alone would silently fall back to the slower pure-Python path)
#   runtime  what the api-server, scheduler, dag-processor, triggerer and celery worker run: no
#            compiler, only the built wheel and the pinned requirements
#   dev      runtime + requirements-dev.txt (the jit-audit-dev package in dev/, moto[server], ...): the
#            local AWS emulator only
#
#   docker compose build                                   (builds what docker-compose.yaml uses)
#   docker build --target runtime -t jit-audit-export/airflow:3.3.2-python3.11 .
#
# Keep the base image's Airflow version equal to the apache-airflow pin in requirements.txt
# (tests/deploy/test_docker_compose.py checks it), and its Python to one pyproject.toml allows.
# requirements.txt pins what the CeleryExecutor needs with PostgreSQL and Redis (the Celery and
# Postgres providers, celery[redis], psycopg2, asyncpg): the image runs what `make venv` and the
# Celery live tests run. The runtime stage checks that the executor's modules import.

FROM apache/airflow:3.3.2-python3.11 AS build

USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o airflow -g 0 -m 0775 /opt/jit-audit-export
USER airflow
WORKDIR /opt/jit-audit-export

COPY --chown=airflow:0 pyproject.toml setup.py ./
COPY --chown=airflow:0 include/ ./include/
COPY --chown=airflow:0 plugins/ ./plugins/
# Drop anything compiled on the host (a developer's in-place build), then build the wheel here.
RUN find include plugins \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} + \
    && pip wheel --no-cache-dir --no-deps --wheel-dir dist . \
    && python -c "import glob, zipfile; (wheel,) = glob.glob('dist/*.whl'); names = zipfile.ZipFile(wheel).namelist(); assert any(n.startswith('jit_audit/_speedups') and n.endswith('.so') for n in names), wheel + ' lacks jit_audit/_speedups: the C extension did not compile (see the compiler output above)'"


FROM apache/airflow:3.3.2-python3.11 AS runtime

# Build directory, and the two directories docker-compose.yaml keeps in named volumes (a new named
# volume copies the owner and mode of the image's directory). Group 0 and group-writable, as the
# official image does, so any UID with GID 0 can use them.
USER root
RUN install -d -o airflow -g 0 -m 0775 /opt/jit-audit-export /opt/airflow/config /opt/airflow/logs
USER airflow
WORKDIR /opt/jit-audit-export

# Dependencies first (their layer is reused until a pin changes). requirements.txt pins
# apache-airflow itself, so pip cannot up- or downgrade the image's Airflow.
COPY --chown=airflow:0 requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

# The project itself, from the wheel the build stage compiled, without dependencies (all installed
# above, at the pinned versions). Then: the fast path imports, and Celery's pieces are present.
COPY --from=build --chown=airflow:0 /opt/jit-audit-export/dist/ ./dist/
RUN pip install --no-cache-dir --no-deps dist/*.whl \
    && python -c "import jit_audit._speedups" \
    && python -c "import airflow.providers.celery.executors.celery_executor, psycopg2, asyncpg, redis; from importlib.metadata import version as v; print('celery provider', v('apache-airflow-providers-celery'), 'celery', v('celery'), 'redis', v('redis'))"

# The DAG files, baked in: the image is the unit of deployment (no source mounts in production).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/

WORKDIR /opt/airflow


# Local development only: adds the dev-only package jit-audit-dev (dev/: the AWS emulator and the
# seeder, `jit-audit-dev`), its dependencies (moto[server]) and the test tools. Never deploy this stage.
FROM runtime AS dev

WORKDIR /opt/jit-audit-export
COPY --chown=airflow:0 requirements-dev.txt ./
COPY --chown=airflow:0 dev/ ./dev/
RUN pip install --no-cache-dir -r requirements-dev.txt -c constraints.txt
WORKDIR /opt/airflow
