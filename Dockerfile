# The streamlearn worker image used by docker-compose.yml (`docker compose up --scale worker=3`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamlearn ./streamlearn
RUN pip install --no-cache-dir .
ENV STREAMLEARN_DATA_DIR=/var/lib/streamlearn
CMD ["streamlearn", "worker"]
