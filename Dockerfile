# syntax=docker/dockerfile:1
# One image for every Fluxo process: `docker run fluxo jobmanager …`, `docker run fluxo taskmanager …`,
# `docker run fluxo submit …`. See deploy/README.md and deploy/docker-compose.yml.

# --- build: install every dependency, compile (tsc + the Vite web UI), then drop devDependencies ---
FROM node:20-slim AS build
WORKDIR /app
COPY . .
# `npm ci` runs the `prepare` script, which is `npm run build` (tsc → dist/, Vite → dist/web):
# building here once is enough. The web UI is prebuilt into dist/web, so preact, vite, uplot and
# the rest of devDependencies are not needed at run time.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund \
 && test -f dist/client/main.js && test -f dist/web/index.html \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: the compiled CLI and production dependencies only, as the image's `node` user ---
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
COPY --from=build /app/examples ./examples
# file sinks write relative to the working folder (e.g. out/room-temperature.jsonl)
RUN mkdir -p /app/out && chown node:node /app/out
USER node
# JobManager gRPC (--rpc-port) and web UI / REST / metrics (--web-port); TaskManager data port
# (--data-port, given explicitly in deploy/docker-compose.yml: its default 0 picks a free port)
EXPOSE 6123 8081 6130
ENTRYPOINT ["node", "/app/dist/client/main.js"]
CMD ["--help"]
