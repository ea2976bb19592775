// The seat-booking page. Requests and the live socket go through cairn's browser client
// (/cairn-client.js, served by cairn-server): errors carry cairn's status, retryable ones are
// retried, and the socket reconnects and re-syncs by itself.
import { request, CairnError, CairnSocket } from "/cairn-client.js";

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

  // {ok, status, result}: the answer, or cairn's error body (retryable ones retried first).
  async function post(path, body) {
    try {
      const result = await request(`${path}?${query}`, { method: "POST", body });
      return { ok: true, status: 200, result };
    } catch (error) {
      if (error instanceof CairnError) return { ok: false, status: error.status, result: error.body ?? {} };
      throw error;
    }
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
      createSeatGrid(await request(`/seats?${query}`));
    } catch (error) {
      showStatus(error instanceof CairnError ? error.message || `Loading seats failed (${error.status})`
                                            : `Loading seats failed: ${error.message}`, true);
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

  function connect() {
    new CairnSocket(`/ws?${query}`, {
      // On every open: catch up on anything missed while disconnected.
      onopen: () => {
        connection.textContent = "Live updates on";
        fetchSeats();
      },
      onmessage: (data) => {
        if (Array.isArray(data)) createSeatGrid(data);
        else if (data && data.error) console.error("Server:", data.error);
      },
      onstate: (state) => {
        if (state === "reconnecting") connection.textContent = "Live updates lost; reconnecting...";
      },
    });
  }

  fetchSeats();
  connect();
}
