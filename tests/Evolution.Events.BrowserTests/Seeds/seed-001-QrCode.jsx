// Use client-side for this component
"use client";
import React, { useEffect, useState } from "react";
import io from "socket.io-client";

// Assuming these types are defined for TypeScript usage
// type QrCodeProps = {
//   base64: string;
//   apikey: string;
//   token: string;
// }

const QrCode = ({ base64 }) => {
  const [qrCodeSrc, setQrCodeSrc] = useState("");
  const [connectionStatus, setConnectionStatus] = useState(
    "Waiting for QRCode..."
  );

  useEffect(() => {
    // Initializes the socket inside useEffect to avoid unreachable code
    const socket = io(`wss://api.yoursite.com/instance_name`, {
      transports: ["websocket"],
    });

    // Sets up socket listeners after connecting
    socket.on("connect", () => {
      setQrCodeSrc(base64); // Use the base64 passed via props
      console.log(base64);
      setConnectionStatus("Scan the QRCode...");
    });

    socket.on("qrcode.updated", (data) => {
      // Dynamically updates the QR Code and connection status
      setQrCodeSrc(data.data.qrcode.base64);
      setConnectionStatus("Waiting for connection...");
    });

    socket.on("connection.update", (data) => {
      // Updates the connection state based on the state received from the socket
      const { state } = data.data;
      switch (state) {
        case "close":
          setConnectionStatus("Recreating connection...");
          break;
        case "connecting":
          setConnectionStatus("Attempting to connect...");
          break;
        case "open":
          setConnectionStatus("Successfully connected...");
          setTimeout(() => {
            window.location.reload();
          }, 3500);
          break;
        default:
          // Handle unknown or explicitly unhandled states
          setConnectionStatus("Unknown state...");
          break;
      }
    });

    // Cleans up and disconnects the socket when the component unmounts
    return () => {
      socket.disconnect();
    };
  }, [base64]); // useEffect dependencies

  return (
    <div className="flex flex-col justify-center items-center p-4">
      <img src={qrCodeSrc} alt="QR Code" height="250" width="250" />
      <div>{connectionStatus}</div>
    </div>
  );
};

export default QrCode;
