# One image for every process of the Procfile (web, worker, beat, flower, release).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY web ./web
COPY tasks ./tasks
COPY gunicorn.conf.py ./
RUN pip install --no-cache-dir . && useradd --create-home workteam
USER workteam
# Inside the container every address is its own; docker-compose publishes it on 127.0.0.1.
ENV WEB_BIND=0.0.0.0:5000
EXPOSE 5000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "web:create_app()"]
