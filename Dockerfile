# driftwarden daemon. Build: docker build -t driftwarden .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIFTWARDEN_DATABASE_URL=sqlite:////data/driftwarden.db \
    DRIFTWARDEN_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY collectors ./collectors
COPY detectors ./detectors
RUN pip install --no-cache-dir "./[postgres]" \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin driftwarden \
    && mkdir -p /data && chown driftwarden /data

USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["driftwarden"]
CMD ["serve", "--host", "0.0.0.0"]
