# Sonoran CAD Discord bot. Build: docker build -t sonoran-bot .
# Run:   docker run -d --env-file .env -v sonoran-data:/data -p 8085:8085 sonoran-bot
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOT_DATABASE__PATH=/data/bot.sqlite3 \
    BOT_SERVER__HOST=0.0.0.0 \
    BOT_SERVER__PORT=8085

RUN useradd --create-home --uid 10001 bot \
    && mkdir -p /data /app \
    && chown bot:bot /data /app

WORKDIR /app
# Installed the same way `python3 manage.py run` installs it: the project and its runtime dependencies.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .

COPY config.example.toml ./config.example.toml
USER bot
VOLUME ["/data"]
EXPOSE 8085

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BOT_SERVER__PORT','8085'), timeout=4).status == 200 else 1)"

ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
