# One image for the loader and the enforcement service.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY enforcement enforcement
COPY loader loader
COPY varco varco
COPY examples examples
RUN pip install --no-cache-dir .
ENV VARCO_CONFIG=/app/examples/demo.toml VARCO_DATA_DIR=/data VARCO_HOST=0.0.0.0
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["varco"]
CMD ["serve"]
