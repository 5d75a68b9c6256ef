# One image for every role: `tutorpulse api`, `tutorpulse worker`, `tutorpulse db upgrade` (see docker-compose.yml).

# durable-rules ships only an sdist with a C extension, so wheels are built where a compiler exists and the
# runtime image stays compiler-free.
# The pages' scripts (htmx, Chart.js) from the npm registry at their locked versions, as `make install` does.
FROM node:20-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts \
    && mkdir -p vendor \
    && cp node_modules/htmx.org/dist/htmx.min.js node_modules/chart.js/dist/chart.umd.min.js vendor/

FROM python:3.12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
COPY --from=assets /src/vendor web/static/vendor
# No [test] extra: the test servers and SMTP sink have no place in production.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 tutorpulse
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels tutorpulse && rm -rf /wheels
USER tutorpulse
# Settings read ./.env relative to the working directory; nothing is written here when DATABASE_URL is set.
WORKDIR /home/tutorpulse
EXPOSE 8000
CMD ["tutorpulse", "api", "--host", "0.0.0.0"]
