# syntax=docker/dockerfile:1
# The gateway in a container (docs/deployment.md):
#
#   docker build -t smsgw .
#   docker run -d --name smsgw --env-file smsgw.env -p 8080:8080 -p 9100:9100 -p 2775:2775 \
#              -v /srv/smsgw/gateway.toml:/etc/smsgw/gateway.toml:ro -v smsgw-data:/var/lib/smsgw smsgw
#
# The image's own /etc/smsgw/gateway.toml is etc/production.toml: it reads its secrets from the
# environment and names each one that is missing, so a bare `docker run smsgw` says what to give.

# Stage 1 builds the wheel, so the image gets the installed package and none of the source tree.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheel is bind-mounted, not copied, so it takes no layer of its own. The direct dependencies
# are pinned in pyproject.toml, and every one comes as a binary wheel: no compiler needed.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl

# A fixed uid, so a volume's owner is the same in every container from this image.
RUN groupadd --system --gid 10001 smsgw \
 && useradd --system --uid 10001 --gid smsgw --home-dir /var/lib/smsgw --no-create-home \
            --shell /usr/sbin/nologin smsgw \
 && mkdir -p /etc/smsgw /var/lib/smsgw \
 && chown smsgw:smsgw /var/lib/smsgw \
 && chmod 750 /var/lib/smsgw
COPY --chown=root:smsgw --chmod=640 etc/production.toml /etc/smsgw/gateway.toml

# The config (mount your own file over it) and the store: SQLite's file, when the config says
# url = "sqlite:////var/lib/smsgw/smsgw.db" instead of PostgreSQL.
VOLUME ["/etc/smsgw", "/var/lib/smsgw"]
WORKDIR /var/lib/smsgw
# By number: Kubernetes' runAsNonRoot can check a number, not a name.
USER 10001:10001

# HTTP API, Prometheus metrics, the SMPP server for customers' ESMEs ([smpp_server]).
EXPOSE 8080 9100 2775

# No curl in a slim image: Python asks. The image's config (etc/production.toml) speaks HTTPS; set
# SMSGW_HEALTHZ when [http] listens elsewhere or plain HTTP (http://127.0.0.1:8080/healthz): the
# probe stays on loopback, so it asks whether the gateway answers, not whom its certificate names.
ENV SMSGW_HEALTHZ=https://127.0.0.1:8080/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, ssl, urllib.request; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; urllib.request.urlopen(os.environ.get('SMSGW_HEALTHZ', 'http://127.0.0.1:8080/healthz'), timeout=4, context=c)"]

# smsgw is PID 1: it handles SIGTERM (docker stop: unbind from every SMSC, then exit) and SIGHUP
# (docker kill -s HUP: reload the config), and waits for its own worker processes.
ENTRYPOINT ["smsgw"]
CMD ["run", "-c", "/etc/smsgw/gateway.toml"]
