# One image for every process of the Procfile (web, worker, beat, flower, release).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY web ./web
COPY tasks ./tasks
RUN pip install --no-cache-dir . && useradd --create-home workteam
USER workteam
EXPOSE 5000
CMD ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "3", "web:create_app()"]
