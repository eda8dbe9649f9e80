# mockpanel's servers, headless, on the seeds' ports. Build: docker build -t mockpanel .  Run: docker compose up -d
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mockpanel ./mockpanel
RUN pip install --no-cache-dir .
# Inside a container the servers must listen on every interface for published ports to reach them.
EXPOSE 8000 9000 4000 3000 8002
CMD ["mockpanel", "serve", "--host", "0.0.0.0"]
