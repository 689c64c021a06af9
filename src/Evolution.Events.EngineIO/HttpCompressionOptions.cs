namespace Evolution.Events.EngineIO;

/// <summary>
/// HTTP compression of polling responses (engine.io's <c>httpCompression</c>): a poll response of at least
/// <see cref="Threshold"/> bytes is sent gzip- or deflate-encoded to a client whose <c>Accept-Encoding</c> takes one
/// (gzip preferred). See <see cref="EngineIOOptions.HttpCompression"/>.
/// </summary>
public sealed class HttpCompressionOptions
{
    /// <summary>Smallest response body (bytes) that is compressed. Default 1024, as engine.io.</summary>
    public int Threshold { get; set; } = 1024;
}
