using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Evolution.Events.Gateway.OpenApi;

/// <summary>
/// The OpenAPI document of the REST and ingestion API at <c>/openapi/v1.json</c> (ASP.NET Core's own
/// generator), with the <c>apikey</c> header as the security scheme. Socket.IO and plain WebSocket are
/// described in docs/api.md and docs/clients.md: OpenAPI has no words for them.
/// </summary>
public static class GatewayOpenApi
{
    public const string SecurityScheme = "apikey";

    public static IServiceCollection AddGatewayOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Evolution Events gateway",
                Version = "v1",
                Description = "Instances and their websocket settings (REST), event ingestion (POST /webhook), "
                    + "health, metrics and the dashboard's stats. Events reach clients over Socket.IO (/socket.io/, "
                    + "namespace /{instanceName}) and plain WebSocket (/ws/events): see docs/api.md. "
                    + "Authenticate with the global key (AUTHENTICATION_API_KEY) or an instance token in the "
                    + "'apikey' header (ingestion also takes 'Authorization: Bearer').",
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[SecurityScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = "apikey",
                Description = "The global key, or an instance's token for that instance's own resources.",
            };
            document.Security ??= [];
            document.Security.Add(new OpenApiSecurityRequirement
            {
                [new OpenApiSecuritySchemeReference(SecurityScheme, document)] = [],
            });
            return Task.CompletedTask;
        }));

    /// <summary>The browsable API reference (Scalar, its assets served from the package's assembly: no CDN) lives under this path.</summary>
    public const string ReferencePath = "/api";

    /// <summary>Serves the document at <c>/openapi/v1.json</c> and the API reference page at <c>/api</c>.</summary>
    public static WebApplication MapGatewayOpenApi(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference(ReferencePath, options => options
            .WithTitle("Evolution Events gateway API")
            .WithOpenApiRoutePattern("/openapi/{documentName}.json")
            .AddPreferredSecuritySchemes(SecurityScheme)
            // the page talks to this gateway only: no telemetry, AI chat, MCP or hosted-tools toolbar
            .DisableTelemetry()
            .DisableAgent()
            .DisableMcp()
            .HideDeveloperTools());
        return app;
    }
}
