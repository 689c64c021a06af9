using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Evolution.Events.Gateway.Auth;
using Microsoft.AspNetCore.WebUtilities;

namespace Evolution.Events.Gateway.Http;

/// <summary>
/// The one error shape of every endpoint:
/// <c>{ "status": 400, "error": "Bad Request", "messages": [ "…" ] }</c>.
/// </summary>
public sealed record ApiError(
    [property: JsonPropertyName("status")] int Status,
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("messages")] IReadOnlyList<string> Messages)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Most messages an error lists: past it, the first <see cref="MaxMessages"/> and one
    /// <c>"… and N more"</c>, so that a body with a million bad items gets a small answer.
    /// </summary>
    public const int MaxMessages = 20;

    /// <summary>The error with at most <see cref="MaxMessages"/> messages plus one that counts the rest.</summary>
    public static ApiError Create(int status, params IEnumerable<string> messages)
    {
        var kept = new List<string>(Math.Min(MaxMessages + 1, messages.TryGetNonEnumeratedCount(out var n) ? n : MaxMessages + 1));
        var more = 0;
        foreach (var message in messages)
        {
            if (kept.Count <= MaxMessages)
                kept.Add(message);
            else
                more++;
        }
        if (more > 0)
        {
            kept.RemoveAt(MaxMessages);
            kept.Add(MoreMessage(more + 1));
        }
        return new(status, ReasonPhrases.GetReasonPhrase(status), kept);
    }

    /// <summary>The last message of a capped list: <c>"… and N more"</c>.</summary>
    public static string MoreMessage(long more) => $"… and {more} more";

    /// <summary>An <see cref="IResult"/> for minimal-API handlers.</summary>
    public static IResult Result(int status, params IEnumerable<string> messages) =>
        Results.Json(Create(status, messages), Json, statusCode: status);

    /// <summary>The UTF-8 body (for middleware and refusals before a WebSocket upgrade).</summary>
    public static byte[] Body(int status, params IEnumerable<string> messages) =>
        JsonSerializer.SerializeToUtf8Bytes(Create(status, messages), Json);

    /// <summary>Writes the error to a response that has not started.</summary>
    public static async Task WriteAsync(HttpResponse response, int status, params IEnumerable<string> messages)
    {
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        await response.Body.WriteAsync(Body(status, messages));
    }

    /// <summary>
    /// For <c>UseStatusCodePages</c>: an error answered without a body (no route 404, 405, the 415 of an endpoint
    /// that accepts only JSON, all decided before any handler or key check) gets the same JSON shape as the rest.
    /// </summary>
    public static Task WriteStatusCodePageAsync(Microsoft.AspNetCore.Diagnostics.StatusCodeContext context)
    {
        var http = context.HttpContext;
        var status = http.Response.StatusCode;
        var message = status switch
        {
            StatusCodes.Status415UnsupportedMediaType =>
                $"content-type: must be application/json (got '{Truncate(http.Request.ContentType ?? "none", 64)}')",
            StatusCodes.Status404NotFound => $"no endpoint at {http.Request.Method} {Truncate(http.Request.Path.Value ?? "/", 128)}",
            StatusCodes.Status405MethodNotAllowed => $"method {http.Request.Method} is not allowed on {Truncate(http.Request.Path.Value ?? "/", 128)}",
            _ => ReasonPhrases.GetReasonPhrase(status),
        };
        return WriteAsync(http.Response, status, message);
    }

    private static string Truncate(string value, int max) => value.Length > max ? value[..max] + "…" : value;

    /// <summary>401 or 403 for a refused <see cref="AccessDecision"/>.</summary>
    public static IResult Refused(AccessDecision decision, string forbiddenMessage) =>
        decision == AccessDecision.Unauthenticated
            ? Result(StatusCodes.Status401Unauthorized, "Invalid or missing API key")
            : Result(StatusCodes.Status403Forbidden, forbiddenMessage);

    /// <summary>The message of the 404 the WebSocket endpoints answer while WEBSOCKET_ENABLED=false.</summary>
    public const string WebSocketDisabledMessage = "WebSocket endpoints are disabled on this server (WEBSOCKET_ENABLED=false)";
}
