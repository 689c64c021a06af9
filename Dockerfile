# Evolution Events gateway: multi-stage build.
#   docker build -t evolution-events .
#   docker run -p 8080:8080 -e AUTHENTICATION_API_KEY=change-me -v "$PWD/data:/app/data" evolution-events
# See docs/deploying.md.

# 1. The stock socket.io-client browser bundle for the dashboard and the Admin UI's files, from the npm registry (lock file pinned).
FROM node:20-bookworm-slim AS assets
WORKDIR /assets
COPY src/Evolution.Events.Gateway/package.json src/Evolution.Events.Gateway/package-lock.json src/Evolution.Events.Gateway/.npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# 2. Build and publish with the .NET SDK. The bundle is put where the build's copy step looks for it,
#    so the SDK image needs no Node.js.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props .editorconfig ./
# src/Directory.Build.props adds the public API analyzer to the library projects: restore must see it
COPY src/Directory.Build.props src/
COPY src/Evolution.Events.EngineIO/Evolution.Events.EngineIO.csproj src/Evolution.Events.EngineIO/
COPY src/Evolution.Events.SocketIO/Evolution.Events.SocketIO.csproj src/Evolution.Events.SocketIO/
COPY src/Evolution.Events.SocketIO.Redis/Evolution.Events.SocketIO.Redis.csproj src/Evolution.Events.SocketIO.Redis/
COPY src/Evolution.Events.SocketIO.MsgPack/Evolution.Events.SocketIO.MsgPack.csproj src/Evolution.Events.SocketIO.MsgPack/
COPY src/Evolution.Events.SocketIO.AdminUI/Evolution.Events.SocketIO.AdminUI.csproj src/Evolution.Events.SocketIO.AdminUI/
COPY src/Evolution.Events.Gateway/Evolution.Events.Gateway.csproj src/Evolution.Events.Gateway/
RUN dotnet restore src/Evolution.Events.Gateway/Evolution.Events.Gateway.csproj
COPY src/ src/
COPY --from=assets /assets/node_modules/socket.io-client/dist/socket.io.min.js src/Evolution.Events.Gateway/wwwroot/socket.io.min.js
COPY --from=assets /assets/node_modules/socket.io-client/dist/ src/Evolution.Events.Gateway/client/
# the Admin UI (ADMIN_UI_ENABLED) and its fonts, where the build's copy step looks for them
COPY --from=assets /assets/node_modules/@socket.io/admin-ui/ui/dist/ src/Evolution.Events.Gateway/node_modules/@socket.io/admin-ui/ui/dist/
COPY --from=assets /assets/node_modules/@mdi/font/ src/Evolution.Events.Gateway/node_modules/@mdi/font/
COPY --from=assets /assets/node_modules/@fontsource/roboto/ src/Evolution.Events.Gateway/node_modules/@fontsource/roboto/
RUN dotnet publish src/Evolution.Events.Gateway/Evolution.Events.Gateway.csproj -c Release --no-restore -o /app/publish /p:UseAppHost=false

# 3. Runtime: ASP.NET Core only, as the image's non-root user.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app/publish .
RUN mkdir -p /app/data && chown -R $APP_UID /app/data
ENV SERVER_PORT=8080 \
    DATABASE_PATH=/app/data/gateway.db \
    WEBSOCKET_ENABLED=true \
    WEBSOCKET_GLOBAL_EVENTS=false \
    CORS_ORIGIN=* \
    LOG_LEVEL=Information \
    DOTNET_gcServer=1
USER $APP_UID
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["dotnet", "Evolution.Events.Gateway.dll", "healthcheck"]
ENTRYPOINT ["dotnet", "Evolution.Events.Gateway.dll"]
