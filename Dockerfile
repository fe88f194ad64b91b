# One image for the four processes and the console; docker-compose.yml picks the console script per service.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY command_service ./command_service
COPY query_service ./query_service
COPY shared ./shared
COPY ops ./ops
# The postgres extra: the image also runs on PostgreSQL (the compose profile "cluster").
# The volumes mount at /data/events, /data/read and /data/auth; creating them here gives them
# our owner. The otel extra: setting OTEL_EXPORTER_OTLP_ENDPOINT is then enough to export spans.
RUN pip install '.[otel,postgres]' && useradd --system --uid 10001 orders \
    && mkdir -p /data/events /data/read /data/auth /data/console \
    && chown -R orders /data

USER orders
ENV DATA_DIR=/data \
    AUTH_MODE=jwt
EXPOSE 8001 8002 8003
CMD ["command-api"]
