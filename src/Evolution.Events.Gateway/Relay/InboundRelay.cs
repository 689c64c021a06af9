using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Relay;

/// <summary>
/// Relays a client-emitted event to INBOUND_WEBHOOK_URL as
/// <c>{ event, instance, data, socket_id, date_time }</c> and returns the upstream's JSON answer, or
/// <c>{ "error": "…", "status": code }</c> when there is no upstream, it failed, answered non-2xx or non-JSON,
/// or the relay is at its global bound (INBOUND_WEBHOOK_MAX_IN_FLIGHT requests or
/// INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES of payloads in flight, all clients together). The error never names the
/// upstream (its host, port or path): it goes to clients; the log has the details.
/// Never throws (except on the caller's cancellation).
/// </summary>
public sealed class InboundRelay(IHttpClientFactory httpClients, GatewayOptions options, ILogger<InboundRelay> logger)
{
    public const string HttpClientName = "inbound-relay";
    private int _inFlight;
    private long _inFlightBytes;

    /// <summary>Relays now waiting for the upstream.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

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
        var body = JsonSerializer.SerializeToUtf8Bytes(payload, GatewayJson.SerializerOptions);
        if (TryEnter(body.Length) is { } busy)
        {
            logger.LogWarning("Relay of {Event} for {Instance} refused: {Reason}", eventName, instance, busy);
            return Error(busy, null);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.InboundWebhookTimeout);
        try
        {
            return await PostAsync(url, body, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Relay of {Event} for {Instance} timed out", eventName, instance);
            return Error("upstream timed out", null);
        }
        catch (HttpRequestException ex)
        {
            // the exception names the upstream's address: the log only, never the client's ack
            logger.LogWarning("Relay of {Event} for {Instance} failed: {Reason}", eventName, instance, ex.Message);
            return Error("upstream unreachable", null);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Add(ref _inFlightBytes, -body.Length);
        }
    }

    /// <summary>Takes a slot and the payload's bytes from the global bounds; the refusal message when either is full.</summary>
    private string? TryEnter(int bytes)
    {
        var count = Interlocked.Increment(ref _inFlight);
        var total = Interlocked.Add(ref _inFlightBytes, bytes);
        if (count <= options.InboundWebhookMaxInFlight && total <= options.InboundWebhookMaxInFlightBytes)
            return null;
        Interlocked.Decrement(ref _inFlight);
        Interlocked.Add(ref _inFlightBytes, -bytes);
        return count > options.InboundWebhookMaxInFlight
            ? $"relay busy: {options.InboundWebhookMaxInFlight} relays already in flight (INBOUND_WEBHOOK_MAX_IN_FLIGHT); try again later"
            : $"relay busy: this {bytes}-byte payload would pass INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES={options.InboundWebhookMaxInFlightBytes} in flight; try again later";
    }

    private async Task<JsonNode?> PostAsync(Uri url, byte[] body, CancellationToken ct)
    {
        var client = httpClients.CreateClient(HttpClientName);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        using var response = await client.PostAsync(url, content, ct);
        var status = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode)
            return Error($"upstream answered {status}", status);
        var answer = await response.Content.ReadAsByteArrayAsync(ct);
        try
        {
            return answer.Length == 0 ? Error("upstream answered without a body", status) : JsonNode.Parse(answer);
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
