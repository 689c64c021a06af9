namespace Evolution.Events.Gateway.Options;

/// <summary>A configuration value is invalid; <see cref="Exception.Message"/> is the one line to print.</summary>
public sealed class GatewayConfigurationException : Exception
{
    public GatewayConfigurationException(string message) : base(message) { }

    public GatewayConfigurationException(string message, Exception inner) : base(message, inner) { }

    public GatewayConfigurationException() { }
}
