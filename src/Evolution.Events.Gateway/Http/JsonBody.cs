using System.Buffers;
using System.Text.Json;
using Evolution.Events.Gateway.Auth;
using FluentValidation;
using Microsoft.AspNetCore.Http.Features;

namespace Evolution.Events.Gateway.Http;

/// <summary>Reads and validates JSON request bodies into one of the shapes of <see cref="ApiError"/>.</summary>
public static class JsonBody
{
    /// <summary>
    /// Largest body of the REST endpoints (<c>/instance/create</c>, <c>/websocket/set/{name}</c>): 64 KiB,
    /// far more than any valid request (the whole event catalog is under 1 KiB). Larger gets 413.
    /// </summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>
    /// Reads the body (at most <see cref="MaxBytes"/>, else 413) as a JSON object into <typeparamref name="T"/>
    /// (whose properties are usually <see cref="JsonElement"/> so that a wrong type becomes a field message,
    /// not a parse failure) and validates it. Returns the value, or the 400/413 to answer.
    /// </summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(
        HttpRequest request, IValidator<T> validator, CancellationToken ct) where T : class
    {
        var body = await ReadLimitedAsync(request, MaxBytes, ct);
        if (body is null)
            return (null, ApiError.Result(413, $"body: larger than {MaxBytes} bytes (the limit of REST request bodies)"));
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.Value);
        }
        catch (JsonException ex)
        {
            return (null, ApiError.Result(400, $"malformed JSON: {ex.Message}"));
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return (null, ApiError.Result(400, "body: must be a JSON object"));
            var value = document.RootElement.Deserialize<T>(ApiError.Json)!;
            var result = await validator.ValidateAsync(value, ct);
            if (!result.IsValid)
                return (null, ApiError.Result(400, ValidationMessages.Of(result)));
            return (value, null);
        }
    }

    /// <summary>
    /// Reads the request body; null when it is larger than <paramref name="limit"/> (checked on
    /// <c>Content-Length</c> first, then while reading, so a chunked body stops at the limit).
    /// </summary>
    public static async Task<ReadOnlyMemory<byte>?> ReadLimitedAsync(HttpRequest request, long limit, CancellationToken ct)
    {
        if (request.ContentLength > limit)
            return null;
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
            sizeFeature.MaxRequestBodySize = null;
        // sized for the declared length and one byte more (a read that fills the +1 is over the limit): a body with a
        // Content-Length is read without the buffer growing; a chunked one grows by at least 8 KiB at a time
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 4096, limit) + 1);
        while (true)
        {
            var memory = buffer.GetMemory(buffer.FreeCapacity > 0 ? 1 : 8192);
            var read = await request.Body.ReadAsync(memory, ct);
            if (read == 0)
                return buffer.WrittenMemory; // no copy: JsonDocument.Parse reads it in place
            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
                return null;
        }
    }
}

/// <summary>Small request helpers shared by the REST endpoints.</summary>
public static class RequestAuth
{
    public static AuthResult Authenticate(this GatewayAuthorizer authorizer, HttpRequest request) =>
        authorizer.Authenticate(ApiKeyReader.FromHeaders(request));
}
