# Mahali in a container: built and run on Debian 12 with Debian's packages only.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
      pkg-config libpq-dev libgeos-dev libproj-dev libcivetweb-dev libjansson-dev libsodium-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /build -j"$(nproc)"

FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 libgeos-c1v5 libproj25 \
      libcivetweb1 libjansson4 libsodium23 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /nonexistent mahali
COPY --from=build /build/mahali /usr/local/bin/mahali
USER mahali
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mahali"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
