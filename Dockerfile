# syntax=docker/dockerfile:1
# Event Horizon: build with the same commands as the README and CI (npm ci, which builds through
# `prepare`; npm test runs in CI), then run `npm start` as a non-root user.
#
#   docker build -t eventhorizon .
#   docker run -d -p 50051:50051 -p 9464:9464 -v eh-data:/data eventhorizon
#   docker exec <container> eventhorizon auth key create --principal admin
#
# Node.js: the current LTS line. better-sqlite3 is a native addon, so the build stage has a
# compiler in case no prebuilt binary matches.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json buf.yaml buf.gen.yaml ./
COPY bin ./bin
COPY proto ./proto
# The TypeScript client is an npm workspace: npm ci needs its package.json, the build its sources.
COPY clients ./clients
COPY src ./src
# scripts/copy-web-assets.mjs is a step of the build.
COPY scripts ./scripts
# The web console's browser code, page and stylesheet (built into dist/web).
COPY web ./web
# tsconfig.json compiles these too (tests and examples type-check against the API).
COPY test ./test
COPY examples ./examples
# `npm ci` installs and compiles (its `prepare` script is `npm run build`).
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    EH_DATA_DIR=/data \
    EH_LISTEN=0.0.0.0:50051 \
    EH_METRICS_LISTEN=0.0.0.0:9464 \
    EH_AUTH=required
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/proto ./proto
# `eventhorizon` on the PATH, for `docker exec ... eventhorizon auth ...`; /data owned by the
# unprivileged `node` user the server runs as.
RUN ln -s /app/bin/eventhorizon /usr/local/bin/eventhorizon \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "bin/eventhorizon", "health", "--address", "127.0.0.1:50051"]
# npm forwards SIGTERM to the server, which stops gracefully and exits 0.
CMD ["npm", "start"]
