using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.OpenApi;
using Evolution.Events.Gateway.Options;
using FluentValidation;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// REST: <c>/instance/create</c>, <c>/instance/fetchInstances</c>, <c>/instance/delete/{name}</c>,
/// <c>/instance/{name}/token/rotate</c>.
/// </summary>
public static class InstanceEndpoints
{
    public static IEndpointRouteBuilder MapInstanceEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/instance").WithTags("Instances");
        group.MapPost("/create", CreateAsync)
            .WithSummary("Creates an instance (global key); the token is generated when absent.")
            .Accepts<CreateInstanceBody>("application/json")
            .Produces<InstanceView>(StatusCodes.Status201Created).ProducesApiErrors(400, 401, 403, 409);
        group.MapGet("/fetchInstances", Fetch)
            .WithSummary("Lists the instances with their tokens and websocket settings (global key).")
            .Produces<InstanceView[]>().ProducesApiErrors(401, 403);
        group.MapDelete("/delete/{instanceName}", DeleteAsync)
            .WithSummary("Deletes an instance and disconnects its sockets (global key).")
            .Produces<InstanceView>().ProducesApiErrors(401, 403, 404);
        group.MapPost("/{instanceName}/token/rotate", RotateTokenAsync)
            .WithSummary("Replaces the instance's token with a new one (global key, or the instance's current token). "
                + "Sockets that logged in with the old token get the event 'token.rotated' and are disconnected.")
            .Produces<InstanceView>().ProducesApiErrors(401, 403, 404);
        return app;
    }

    /// <summary>The JSON view of an instance (global key only: it carries the token).</summary>
    public static object View(InstanceInfo info, InstanceSettings settings) => new
    {
        instanceName = info.Name,
        token = info.Token,
        createdAt = info.CreatedAt,
        websocket = new { enabled = settings.Enabled, events = settings.Events },
    };

    private static async Task<IResult> CreateAsync(HttpRequest request, GatewayAuthorizer authorizer,
        InstanceRegistry registry, IValidator<CreateInstanceRequest> validator, GatewayOptions options, CancellationToken ct)
    {
        var decision = GatewayAuthorizer.RequireGlobal(authorizer.Authenticate(request));
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, "Only the global API key may create instances");
        var (body, error) = await JsonBody.ReadAsync(request, validator, ct);
        if (body is null)
            return error!;
        if (options.IsReservedInstanceName(body.Name))
            return ApiError.Result(400, $"instanceName: '{body.Name}' is the Socket.IO Admin UI's namespace while ADMIN_UI_ENABLED=true; choose another name");
        var (status, info) = await registry.CreateAsync(body.Name, body.RequestedToken, ct);
        return status switch
        {
            CreateInstanceStatus.NameExists => ApiError.Result(409, $"instanceName: instance '{body.Name}' already exists"),
            CreateInstanceStatus.TokenTaken => ApiError.Result(409, "token: already used by another instance"),
            _ => Results.Json(View(info!, InstanceSettings.Default), ApiError.Json, statusCode: 201),
        };
    }

    private static IResult Fetch(HttpRequest request, GatewayAuthorizer authorizer, InstanceRegistry registry)
    {
        var decision = GatewayAuthorizer.RequireGlobal(authorizer.Authenticate(request));
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, "Only the global API key may list instances");
        string? filter = request.Query["instanceName"];
        var items = registry.List()
            .Where(x => string.IsNullOrEmpty(filter) || x.Info.Name == filter)
            .Select(x => View(x.Info, x.Settings));
        return Results.Json(items, ApiError.Json);
    }

    private static async Task<IResult> RotateTokenAsync(string instanceName, HttpRequest request,
        GatewayAuthorizer authorizer, InstanceRegistry registry, CancellationToken ct)
    {
        var decision = GatewayAuthorizer.Authorize(authorizer.Authenticate(request), instanceName);
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, $"This token may not rotate the token of instance '{instanceName}'");
        InstanceInfo? rotated;
        try
        {
            rotated = await registry.RotateTokenAsync(instanceName, ct);
        }
        catch (InvalidOperationException)
        {
            // a freshly generated 160-bit token already taken: practically never; the caller may simply retry
            return ApiError.Result(409, "token: the generated token is already used; try again");
        }
        return rotated is null
            ? ApiError.Result(404, $"instance '{instanceName}' not found")
            : Results.Json(View(rotated, registry.GetSettings(instanceName) ?? InstanceSettings.Default), ApiError.Json);
    }

    private static async Task<IResult> DeleteAsync(string instanceName, HttpRequest request,
        GatewayAuthorizer authorizer, InstanceRegistry registry, CancellationToken ct)
    {
        var decision = GatewayAuthorizer.RequireGlobal(authorizer.Authenticate(request));
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, "Only the global API key may delete instances");
        var settings = registry.GetSettings(instanceName) ?? InstanceSettings.Default;
        var removed = await registry.DeleteAsync(instanceName, ct);
        return removed is null
            ? ApiError.Result(404, $"instance '{instanceName}' not found")
            : Results.Json(View(removed, settings), ApiError.Json);
    }
}
