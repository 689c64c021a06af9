using System.Text.Json;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.OpenApi;
using Evolution.Events.Gateway.Options;
using FluentValidation;

namespace Evolution.Events.Gateway.Ingestion;

/// <summary>
/// <c>POST /webhook</c> and <c>POST /webhook/{event}</c>: validates the whole batch, registers unknown
/// instances (global key only), serializes each envelope once and publishes the batch in order.
/// </summary>
public static class WebhookEndpoints
{
    public static IEndpointRouteBuilder MapWebhookEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhook", (Func<HttpContext, Task<IResult>>)(context => IngestAsync(context, null)))
            .WithSummary("Ingests one Evolution webhook payload or an array of them (global key, or an instance's token for its own events).")
            .WithIngestionDocs();
        app.MapPost("/webhook/{eventName}", (HttpContext context, string eventName) => IngestAsync(context, eventName))
            .WithSummary("Same, with the event in the URL as WEBHOOK_BY_EVENTS sends it (e.g. /webhook/messages-upsert); the body's event wins.")
            .WithIngestionDocs();
        return app;
    }

    private static async Task<IResult> IngestAsync(HttpContext context, string? urlEventName)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<GatewayOptions>();
        var ct = context.RequestAborted;
        if (services.GetRequiredService<IEventBus>().IsCompleted)
            return ShuttingDown(context);
        var auth = services.GetRequiredService<GatewayAuthorizer>().Authenticate(ApiKeyReader.FromHeaders(context.Request));
        if (!auth.IsAuthenticated)
            return ApiError.Result(401, "Invalid or missing API key");
        EventName? urlEvent = null;
        if (urlEventName is not null && !EventNames.TryParse(urlEventName, out urlEvent))
            return ApiError.Result(400, $"url: unknown event name '{urlEventName}'");
        var body = await JsonBody.ReadLimitedAsync(context.Request, options.WebhookMaxBody, ct);
        if (body is null)
            return ApiError.Result(413, $"body: larger than WEBHOOK_MAX_BODY ({options.WebhookMaxBody} bytes)");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.Value);
        }
        catch (JsonException ex)
        {
            return ApiError.Result(400, $"malformed JSON: {ex.Message}");
        }
        using (document)
            return await AcceptAsync(context, auth, new WebhookBatch(document.RootElement, urlEvent), options);
    }

    private static async Task<IResult> AcceptAsync(HttpContext context, AuthResult auth, WebhookBatch batch,
        GatewayOptions options)
    {
        var services = context.RequestServices;
        var ct = context.RequestAborted;
        var validation = await services.GetRequiredService<IValidator<WebhookBatch>>().ValidateAsync(batch, ct);
        if (!validation.IsValid)
            return ApiError.Result(400, ValidationMessages.Of(validation));
        var items = batch.Parse();
        var foreign = items.Select((x, i) => (x.Instance, i))
            .Where(x => !GatewayAuthorizer.CanAccessInstance(auth, x.Instance)).ToList();
        if (foreign.Count > 0)
        {
            var refused = foreign.Take(ApiError.MaxMessages)
                .Select(x => $"items[{x.i}].instance: this token may not send events of instance '{x.Instance}'").ToList();
            if (foreign.Count > ApiError.MaxMessages)
                refused.Add(ApiError.MoreMessage(foreign.Count - ApiError.MaxMessages));
            return ApiError.Result(403, refused);
        }
        var events = items.Select(x => EnvelopeWriter.Build(x.Event, x.Instance, x.Item, options.ServerUrl)).ToList();
        if (Undeliverable(events, options) is { } tooLarge)
            return tooLarge;
        var registry = services.GetRequiredService<InstanceRegistry>();
        foreach (var instance in items.Select(x => x.Instance).Distinct(StringComparer.Ordinal))
            await registry.EnsureRegisteredAsync(instance, ct);
        try
        {
            // whole or nothing: an aborted request (ct) or a shutdown publishes none of the batch
            await services.GetRequiredService<IEventBus>().PublishAsync(events, ct);
        }
        catch (EventBusCompletedException)
        {
            return ShuttingDown(context);
        }
        services.GetRequiredService<GatewayMetrics>().Ingested(events);
        return Results.Json(new { status = 202, accepted = events.Count }, ApiError.Json, statusCode: 202);
    }

    /// <summary>Seconds a producer should wait before retrying after a 503 at shutdown.</summary>
    public const int ShutdownRetryAfterSeconds = 5;

    /// <summary>503 + Retry-After: the server is stopping and accepts no more events (none of this request was published).</summary>
    private static IResult ShuttingDown(HttpContext context)
    {
        context.Response.Headers.RetryAfter = ShutdownRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return ApiError.Result(StatusCodes.Status503ServiceUnavailable,
            "the server is shutting down: nothing of this request was published; retry later (or on another instance)");
    }

    /// <summary>
    /// 413 when an envelope is larger than <see cref="GatewayOptions.MaxEnvelopeBytes"/>: it could never be
    /// queued for a Socket.IO client (before, it was accepted, never delivered, and dropped every subscriber).
    /// </summary>
    private static IResult? Undeliverable(List<GatewayEvent> events, GatewayOptions options)
    {
        var max = options.MaxEnvelopeBytes;
        var tooLarge = events.Select((e, i) => (Bytes: e.EnvelopeJson.Length, i)).Where(x => x.Bytes > max).ToList();
        if (tooLarge.Count == 0)
            return null;
        var messages = tooLarge.Take(ApiError.MaxMessages).Select(x =>
            $"items[{x.i}]: the event's envelope is {x.Bytes} bytes; the largest that can be delivered is {max} bytes "
            + $"(WEBSOCKET_SEND_QUEUE_BYTES={options.SendQueueBytes}, a connection's send queue, less {GatewayOptions.PacketFramingBytes} for the packet's framing)").ToList();
        if (tooLarge.Count > ApiError.MaxMessages)
            messages.Add(ApiError.MoreMessage(tooLarge.Count - ApiError.MaxMessages));
        return ApiError.Result(StatusCodes.Status413PayloadTooLarge, messages);
    }

    private static RouteHandlerBuilder WithIngestionDocs(this RouteHandlerBuilder endpoint) => endpoint
        .WithTags("Ingestion")
        .Accepts<WebhookPayload[]>("application/json")
        .Produces<WebhookAccepted>(StatusCodes.Status202Accepted)
        .ProducesApiErrors(400, 401, 403, 413, 503);
}
