# The loader's and the enforcement service's image, in three targets:
#   service  production (docker-compose.yml's default profile): no configuration inside;
#            the city mounts its own at /etc/varco/varco.toml (see examples/padova.toml).
#   demo     + examples/demo.toml and its demo keys (the `demo` profile; never production).
#   load     + locust and bench/ (the `demo` profile's locust service).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY enforcement enforcement
COPY loader loader
COPY varco varco
# The project and every dependency as wheels: the service image needs no compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS service
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home varco \
    && mkdir -p /data /etc/varco && chown varco:varco /data
COPY deploy/entrypoint.sh /usr/local/bin/varco-entrypoint
ENV VARCO_CONFIG=/etc/varco/varco.toml VARCO_DATA_DIR=/data VARCO_HOST=0.0.0.0 VARCO_PORT=8080
USER varco
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["varco-entrypoint", "varco"]
CMD ["serve"]

FROM service AS demo
COPY examples/demo.toml /etc/varco/demo.toml
ENV VARCO_CONFIG=/etc/varco/demo.toml

FROM demo AS load
USER root
RUN pip install --no-cache-dir "locust>=2.20"
COPY bench /app/bench
USER varco
WORKDIR /app
ENTRYPOINT ["locust", "-f", "/app/bench/locustfile.py"]
CMD []
