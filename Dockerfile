# One image with every binary: demo-services, bff-web, bff-mobile.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bff-web -p bff-mobile -p portico-demo --bins

FROM debian:bookworm-slim
COPY --from=build /src/target/release/bff-web /src/target/release/bff-mobile \
     /src/target/release/demo-services /usr/local/bin/
COPY descriptors /app/descriptors
COPY deploy /app/deploy
COPY bff-web/operations /app/bff-web/operations
COPY bff-mobile/operations /app/bff-mobile/operations
WORKDIR /app
