using System.ComponentModel;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Evolution.Events.Gateway.OpenApi;

// Shapes for the OpenAPI document only: the handlers read and validate raw JSON (so that every bad field gets
// its own message), which the generator cannot see. Names and casing are the wire's.

[Description("One Evolution API webhook payload; the body of POST /webhook is one of these or an array of them.")]
public sealed class WebhookPayload
{
    [JsonPropertyName("event"), Description("messages.upsert, MESSAGES_UPSERT or messages-upsert; optional when the URL names it")]
    public string? Event { get; init; }

    [JsonPropertyName("instance"), Description("instance name: 1–64 of letters, digits, '-', '_', '.'")]
    public required string Instance { get; init; }

    [JsonPropertyName("data"), Description("the event's data, forwarded as is")]
    public JsonObject? Data { get; init; }

    [JsonPropertyName("date_time")]
    public string? DateTime { get; init; }

    [JsonPropertyName("sender")]
    public string? Sender { get; init; }

    [JsonPropertyName("server_url"), Description("falls back to SERVER_URL")]
    public string? ServerUrl { get; init; }

    [JsonPropertyName("apikey"), Description("never forwarded to clients")]
    public string? ApiKey { get; init; }

    [JsonPropertyName("destination"), Description("never forwarded to clients")]
    public string? Destination { get; init; }
}

public sealed record WebhookAccepted(
    [property: JsonPropertyName("status")] int Status,
    [property: JsonPropertyName("accepted")] int Accepted);

public sealed class CreateInstanceBody
{
    [JsonPropertyName("instanceName"), Description("1–64 of letters, digits, '-', '_', '.'")]
    public required string InstanceName { get; init; }

    [JsonPropertyName("token"), Description("optional; generated when absent")]
    public string? Token { get; init; }
}

public sealed class WebSocketSettings
{
    [JsonPropertyName("enabled")]
    public required bool Enabled { get; init; }

    [JsonPropertyName("events"), Description("CONSTANT_CASE (or dotted/kebab) event names; empty or absent = every event")]
    public IReadOnlyList<string>? Events { get; init; }
}

public sealed record WebSocketSettingsBody([property: JsonPropertyName("websocket")] WebSocketSettings Websocket);

public sealed record InstanceSettingsView(
    [property: JsonPropertyName("instanceName")] string InstanceName,
    [property: JsonPropertyName("websocket")] WebSocketSettings Websocket);

public sealed record InstanceView(
    [property: JsonPropertyName("instanceName")] string InstanceName,
    [property: JsonPropertyName("token")] string Token,
    [property: JsonPropertyName("createdAt")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("websocket")] WebSocketSettings Websocket);

/// <summary>Declares the <see cref="Http.ApiError"/> answers of an endpoint.</summary>
public static class ApiErrorDocs
{
    public static RouteHandlerBuilder ProducesApiErrors(this RouteHandlerBuilder endpoint, params int[] statuses)
    {
        foreach (var status in statuses)
            endpoint.Produces<Http.ApiError>(status);
        return endpoint;
    }
}
