using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.OpenApi;
using FluentValidation;

namespace Evolution.Events.Gateway.Settings;

/// <summary>REST: <c>POST /websocket/set/{name}</c> and <c>GET /websocket/find/{name}</c>.</summary>
public static class WebSocketSettingsEndpoints
{
    public static IEndpointRouteBuilder MapWebSocketSettingsEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/websocket").WithTags("Websocket settings");
        group.MapPost("/set/{instanceName}", SetAsync)
            .WithSummary("Sets which events the instance's subscribers receive (global key or the instance's token).")
            .Accepts<WebSocketSettingsBody>("application/json")
            .Produces<InstanceSettingsView>(StatusCodes.Status201Created).ProducesApiErrors(400, 401, 403, 404);
        group.MapGet("/find/{instanceName}", Find)
            .WithSummary("Reads the instance's websocket settings (global key or the instance's token).")
            .Produces<InstanceSettingsView>().ProducesApiErrors(401, 403, 404);
        return app;
    }

    private static object View(string name, InstanceSettings settings) => new
    {
        instanceName = name,
        websocket = new { enabled = settings.Enabled, events = settings.Events },
    };

    private static IResult? CheckAccess(string instanceName, HttpRequest request, GatewayAuthorizer authorizer,
        InstanceRegistry registry)
    {
        var decision = GatewayAuthorizer.Authorize(authorizer.Authenticate(request), instanceName);
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, $"This token may not access instance '{instanceName}'");
        if (registry.GetSettings(instanceName) is null)
            return ApiError.Result(404, $"instance '{instanceName}' not found");
        return null;
    }

    private static async Task<IResult> SetAsync(string instanceName, HttpRequest request,
        GatewayAuthorizer authorizer, InstanceRegistry registry,
        IValidator<WebSocketSettingsRequest> validator, CancellationToken ct)
    {
        if (CheckAccess(instanceName, request, authorizer, registry) is { } refused)
            return refused;
        var (body, error) = await JsonBody.ReadAsync(request, validator, ct);
        if (body is null)
            return error!;
        var settings = body.ToSettings();
        if (!await registry.SetSettingsAsync(instanceName, settings, ct))
            return ApiError.Result(404, $"instance '{instanceName}' not found");
        return Results.Json(View(instanceName, settings), ApiError.Json, statusCode: 201);
    }

    private static IResult Find(string instanceName, HttpRequest request, GatewayAuthorizer authorizer,
        InstanceRegistry registry)
    {
        if (CheckAccess(instanceName, request, authorizer, registry) is { } refused)
            return refused;
        var settings = registry.GetSettings(instanceName);
        return settings is null
            ? ApiError.Result(404, $"instance '{instanceName}' not found")
            : Results.Json(View(instanceName, settings), ApiError.Json);
    }
}
