<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <title>QR Code WebSocket</title>
    <!-- Ensure jQuery is included -->
    <script src="https://ajax.googleapis.com/ajax/libs/jquery/3.5.1/jquery.min.js"></script>
    <!-- Include Socket.IO -->
    <script src="https://cdn.socket.io/4.2.0/socket.io.min.js"></script>
  </head>
  <body>
    <div id="qrcode"><img src="" alt="QR Code" style="display:none;" /></div>
    <div id="statusConnect">Waiting for QRCode...</div>

    <script>
      $(document).ready(function() {
        // Establishes the WebSocket connection using Socket.IO
        const socket = io('wss://<?= htmlspecialchars($data->getServer()->domain); ?>/<?= htmlspecialchars($data->uuid); ?>', {
            transports: ['websocket']
        });

        socket.on('connect', () => {
            // Upon connection, display the initial QR Code (if available)
            $("#qrcode img").attr('src', 'data:image/png;base64,<?= htmlspecialchars($instance->base64 ?? ''); ?>').show();
            $('#statusConnect').html('Scan the QRCode...');
        });

        // Updates the QR Code when a new one is received
        socket.on('qrcode.updated', (data) => {
            $("#qrcode img").attr('src', 'data:image/png;base64,' + data.data.qrcode.base64).show();
            $('#statusConnect').html('Waiting for connection...');
        });

        // Updates connection status based on received events
        socket.on('connection.update', (data) => {
            switch (data.data.state) {
                case 'close':
                    $('#statusConnect').html('Recreating connection...');
                    break;
                case 'connecting':
                    $('#statusConnect').html('Attempting to connect...');
                    break;
                case 'open':
                    $('#statusConnect').html('Successfully connected...');
                    setTimeout(() => {
                        window.location.reload(true);
                    }, 3500);
                    break;
            }
        });
      });
    </script>
  </body>
</html>
