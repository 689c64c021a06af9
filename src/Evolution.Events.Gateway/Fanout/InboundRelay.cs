using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Fanout;

/// <summary>
/// Relays a client-emitted event to INBOUND_WEBHOOK_URL as
/// <c>{ event, instance, data, socket_id, date_time }</c> and returns the upstream's JSON answer, or
/// <c>{ "error": "…", "status": code }</c> when there is no upstream, it failed, answered non-2xx or non-JSON.
/// Never throws (except on the caller's cancellation).
/// </summary>
public sealed class InboundRelay(IHttpClientFactory httpClients, GatewayOptions options, ILogger<InboundRelay> logger)
{
    public const string HttpClientName = "inbound-relay";

    public async Task<JsonNode?> RelayAsync(string instance, string eventName, JsonNode? data, string socketId,
        CancellationToken cancellationToken)
    {
        if (options.InboundWebhookUrl is not { } url)
            return Error("no upstream configured (INBOUND_WEBHOOK_URL is unset)", null);
        var payload = new JsonObject
        {
            ["event"] = eventName,
            ["instance"] = instance,
            ["data"] = data?.DeepClone(),
            ["socket_id"] = socketId,
            ["date_time"] = DateTimeOffset.UtcNow.ToString("O"),
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.InboundWebhookTimeout);
        try
        {
            return await PostAsync(url, payload, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Relay of {Event} for {Instance} timed out", eventName, instance);
            return Error("upstream timed out", null);
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning("Relay of {Event} for {Instance} failed: {Reason}", eventName, instance, ex.Message);
            return Error($"upstream unreachable: {ex.Message}", null);
        }
    }

    private async Task<JsonNode?> PostAsync(Uri url, JsonObject payload, CancellationToken ct)
    {
        var client = httpClients.CreateClient(HttpClientName);
        using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(payload, GatewayJson.SerializerOptions));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        using var response = await client.PostAsync(url, content, ct);
        var status = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode)
            return Error($"upstream answered {status}", status);
        var body = await response.Content.ReadAsByteArrayAsync(ct);
        try
        {
            return body.Length == 0 ? Error("upstream answered without a body", status) : JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            return Error("upstream answered with something that is not JSON", status);
        }
    }

    private static JsonObject Error(string message, int? status)
    {
        var error = new JsonObject { ["error"] = message };
        if (status is not null)
            error["status"] = status;
        return error;
    }
}
