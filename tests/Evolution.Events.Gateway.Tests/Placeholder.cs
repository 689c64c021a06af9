namespace Evolution.Events.Gateway.Tests; public class Placeholder { [Fact] public void Builds() { } }
