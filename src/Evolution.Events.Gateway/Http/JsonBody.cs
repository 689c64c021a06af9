using System.Text.Json;
using Evolution.Events.Gateway.Auth;
using FluentValidation;

namespace Evolution.Events.Gateway.Http;

/// <summary>Reads and validates JSON request bodies into one of the shapes of <see cref="ApiError"/>.</summary>
public static class JsonBody
{
    /// <summary>
    /// Reads the body as a JSON object into <typeparamref name="T"/> (whose properties are usually
    /// <see cref="JsonElement"/> so that a wrong type becomes a field message, not a parse failure)
    /// and validates it. Returns the value, or the 400 to answer.
    /// </summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(
        HttpRequest request, IValidator<T> validator, CancellationToken ct) where T : class
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, default, ct);
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
                return (null, ApiError.Result(400, result.Errors.Select(e => $"{e.PropertyName}: {e.ErrorMessage}")));
            return (value, null);
        }
    }
}

/// <summary>Small request helpers shared by the REST endpoints.</summary>
public static class RequestAuth
{
    public static AuthResult Authenticate(this GatewayAuthorizer authorizer, HttpRequest request) =>
        authorizer.Authenticate(ApiKeyReader.FromHeaders(request));
}
