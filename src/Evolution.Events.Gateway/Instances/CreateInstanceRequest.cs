using System.Text.Json;
using FluentValidation;

namespace Evolution.Events.Gateway.Instances;

/// <summary>Body of <c>POST /instance/create</c>. Other Evolution fields (qrcode, integration…) are ignored.</summary>
public sealed class CreateInstanceRequest
{
    public JsonElement InstanceName { get; set; }

    public JsonElement Token { get; set; }

    public string Name => InstanceName.GetString()!;

    /// <summary>The requested token, or null to generate one.</summary>
    public string? RequestedToken => Token.ValueKind == JsonValueKind.String ? Token.GetString() : null;
}

public sealed class CreateInstanceRequestValidator : AbstractValidator<CreateInstanceRequest>
{
    public const int MaxTokenLength = 256;

    public CreateInstanceRequestValidator()
    {
        RuleFor(x => x.InstanceName).Custom((value, ctx) =>
        {
            if (value.ValueKind != JsonValueKind.String)
                ctx.AddFailure("instanceName", "required string");
            else if (!InstanceNames.IsValid(value.GetString()))
                ctx.AddFailure("instanceName", InstanceNames.Rule);
        });
        RuleFor(x => x.Token).Custom((value, ctx) =>
        {
            if (value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
                return;
            if (value.ValueKind != JsonValueKind.String)
                ctx.AddFailure("token", "must be a string");
            else if (!IsValidToken(value.GetString()!))
                ctx.AddFailure("token", $"must be 1-{MaxTokenLength} printable characters without spaces");
        });
    }

    private static bool IsValidToken(string token) =>
        token.Length is > 0 and <= MaxTokenLength && token.All(c => c > ' ' && c != '\u007f');
}
