using Evolution.Events.Gateway;
using Evolution.Events.Gateway.Options;

// Composition lives in GatewayApp; this file only turns start-up failures into one line and an exit code.
try
{
    var app = GatewayApp.Build(args);
    await app.RunAsync();
    return 0;
}
catch (GatewayConfigurationException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}
catch (IOException ex)
{
    // e.g. the port is already in use
    await Console.Error.WriteLineAsync($"Start-up failed: {ex.Message}");
    return 1;
}
