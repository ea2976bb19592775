const seatGrid = document.getElementById("seatGrid");
const title = document.getElementById("title");
const statusLine = document.getElementById("status");
const connection = document.getElementById("connection");
const flightId = new URLSearchParams(window.location.search).get("flightId");

function showStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

if (!flightId) {
  title.textContent = "No Flight ID provided";
  const hint = document.createElement("p");
  hint.textContent = "Add ?flightId=1234 to the address.";
  seatGrid.replaceChildren(hint);
} else {
  handleBooking();
}

function handleBooking() {
  const query = `flightId=${encodeURIComponent(flightId)}`;
  title.textContent = `Book seat for flight ${flightId}`;

  const holdPanel = document.getElementById("holdPanel");
  const heldSeat = document.getElementById("heldSeat");
  const countdown = document.getElementById("countdown");
  const nameInput = document.getElementById("nameInput");
  const bookingPanel = document.getElementById("bookingPanel");
  const bookedSeat = document.getElementById("bookedSeat");
  // This page's hold {seatNumber, holdToken, expiresAt}; its booking survives reloads.
  let myHold = null;
  let countdownTimer = null;
  const bookingKey = `cairn-booking-${flightId}`;
  let myBooking = JSON.parse(localStorage.getItem(bookingKey) || "null");

  async function post(path, body) {
    const response = await fetch(`${path}?${query}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const result = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, result };
  }

  function showBooking() {
    bookingPanel.hidden = !myBooking;
    if (myBooking) bookedSeat.textContent = myBooking.seatNumber;
  }

  function endHold(message, isError) {
    myHold = null;
    clearInterval(countdownTimer);
    holdPanel.hidden = true;
    if (message) showStatus(message, isError);
  }

  function tick() {
    if (!myHold) return;
    const left = Math.max(0, Math.ceil((myHold.expiresAt - Date.now()) / 1000));
    countdown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) endHold(`Your hold on seat ${myHold.seatNumber} expired`, true);
  }

  function createSeatGrid(seats) {
    const cells = [];
    for (let row = 1; row <= 10; row++) {
      for (let col = 0; col < 6; col++) {
        if (col === 3) {
          const aisle = document.createElement("div");
          aisle.className = "aisle";
          cells.push(aisle);
        }
        const seatNumber = `${row}${String.fromCharCode(65 + col)}`;
        const seat = seats.find((s) => s.seatNumber === seatNumber);
        const state = seat ? seat.state || (seat.occupant ? "booked" : "available") : "available";
        const mine = myHold && myHold.seatNumber === seatNumber;
        const seatElement = document.createElement("div");
        seatElement.className = `seat ${state === "booked" ? "unavailable" : state}${mine ? " mine" : ""}`;
        seatElement.dataset.seat = seatNumber;
        seatElement.textContent = seatNumber;
        // The occupant's name is text, never HTML.
        if (state === "booked") seatElement.title = `Taken by ${seat.occupant}`;
        else if (state === "held") seatElement.title = mine ? "Held for you" : "Held by another customer";
        else seatElement.title = "Available";
        if (state === "available") seatElement.onclick = () => holdSeat(seatNumber);
        cells.push(seatElement);
      }
    }
    seatGrid.replaceChildren(...cells);
    // The server released this page's hold (it expired, maybe while the tab slept).
    if (myHold) {
      const seat = seats.find((s) => s.seatNumber === myHold.seatNumber);
      if (seat && seat.state === "available") {
        endHold(`Your hold on seat ${myHold.seatNumber} expired`, true);
        createSeatGrid(seats);
      }
    }
  }

  async function fetchSeats() {
    try {
      const response = await fetch(`/seats?${query}`);
      const body = await response.json();
      if (!response.ok) {
        showStatus(body.error || `Loading seats failed (${response.status})`, true);
        return;
      }
      createSeatGrid(body);
    } catch (error) {
      showStatus(`Loading seats failed: ${error.message}`, true);
    }
  }

  async function holdSeat(seatNumber) {
    try {
      if (myHold) await post("/release-seat", { seatNumber: myHold.seatNumber, holdToken: myHold.holdToken });
      endHold();
      const { ok, status, result } = await post("/hold-seat", { seatNumber });
      if (!ok) {
        showStatus(result.error || `Holding seat ${seatNumber} failed (${status})`, true);
      } else {
        myHold = result;
        heldSeat.textContent = seatNumber;
        holdPanel.hidden = false;
        showStatus(`Seat ${seatNumber} is held for you`, false);
        tick();
        countdownTimer = setInterval(tick, 1000);
        nameInput.focus();
      }
    } catch (error) {
      showStatus(`Holding seat ${seatNumber} failed: ${error.message}`, true);
    }
    fetchSeats();
  }

  holdPanel.onsubmit = async (event) => {
    event.preventDefault();
    if (!myHold) return;
    const name = nameInput.value.trim();
    if (!name) return showStatus("Please enter your name", true);
    const body = { seatNumber: myHold.seatNumber, name, holdToken: myHold.holdToken };
    if (myBooking) body.bookingToken = myBooking.bookingToken; // moving my own booking
    try {
      const { ok, status, result } = await post("/book-seat", body);
      if (ok) {
        endHold(result.message || `Seat ${body.seatNumber} booked`, false);
        myBooking = { seatNumber: result.seatNumber, bookingToken: result.bookingToken };
        localStorage.setItem(bookingKey, JSON.stringify(myBooking));
        showBooking();
      } else {
        showStatus(result.error || `Booking failed (${status})`, true);
      }
    } catch (error) {
      showStatus(`Booking failed: ${error.message}`, true);
    }
    fetchSeats();
  };

  document.getElementById("releaseButton").onclick = async () => {
    if (!myHold) return;
    const { seatNumber, holdToken } = myHold;
    endHold(`Seat ${seatNumber} released`, false);
    await post("/release-seat", { seatNumber, holdToken }).catch(() => {});
    fetchSeats();
  };

  document.getElementById("cancelButton").onclick = async () => {
    if (!myBooking) return;
    try {
      const { ok, status, result } = await post("/cancel-booking", myBooking);
      if (ok || status === 403 || status === 409) {
        // Cancelled, or no longer ours to cancel: either way this page forgets it.
        showStatus(ok ? result.message : result.error, !ok);
        myBooking = null;
        localStorage.removeItem(bookingKey);
        showBooking();
      } else {
        showStatus(result.error || `Cancelling failed (${status})`, true);
      }
    } catch (error) {
      showStatus(`Cancelling failed: ${error.message}`, true);
    }
    fetchSeats();
  };

  showBooking();

  let retryDelay = 500;
  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws?${query}`);
    let heartbeat = null;
    ws.onopen = () => {
      retryDelay = 500;
      connection.textContent = "Live updates on";
      fetchSeats(); // catch up on anything missed while disconnected
      // The server answers pings itself, without waking the flight (hibernation).
      heartbeat = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: "ping", id: String(Date.now()), clientTime: Date.now() }));
        }
      }, 30000);
    };
    ws.onmessage = (event) => {
      try {
        const data = JSON.parse(event.data);
        if (Array.isArray(data)) createSeatGrid(data);
        else if (data && data.error) console.error("Server:", data.error);
        // {"type":"pong"} needs nothing
      } catch (error) {
        console.error("Error parsing WebSocket message:", error);
      }
    };
    ws.onerror = (error) => {
      console.error("WebSocket error:", error);
    };
    ws.onclose = () => {
      clearInterval(heartbeat);
      connection.textContent = "Live updates lost; reconnecting...";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
  }

  fetchSeats();
  connect();
}
