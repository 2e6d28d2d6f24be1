// The proposal form's live preview: the total, the platform fee and the coach's earning,
// priced exactly as the server prices them (contracts.money.quote): integers in the
// currency's minor unit, decimals of the fee rule read as exact fractions, rounding half
// up. The server renders the same panel for the terms it was sent, so without this
// script the coach still sees the figures once the form comes back.
(function () {
  "use strict";

  const form = document.getElementById("proposal-form");
  if (!form) {
    return;
  }
  const currencies = JSON.parse(form.dataset.currencies);
  const feePercent = fraction(form.dataset.feePercent);
  const feeMinimum = fraction(form.dataset.feeMinimum);
  const minEarningText = form.dataset.minEarningPercent;
  const minEarning = fraction(minEarningText);
  const maxTotal = BigInt(form.dataset.maxTotal);
  const MAX_EXPONENT = 1000; // beyond this a typed exponent cannot make a payable price

  const count = form.querySelector("[name=session_count]");
  const currency = form.querySelector("[name=currency]");
  const price = form.querySelector("[name=price_per_session]");
  const symbol = document.getElementById("price-symbol");
  const hint = document.getElementById("preview-hint");
  const figures = document.getElementById("preview-figures");
  const problem = document.getElementById("preview-problem");
  const leastFee = document.getElementById("preview-least-fee");

  // "2.9" -> 29/10, exactly (the server sends plain decimals, never exponents).
  function fraction(text) {
    const [whole, decimals = ""] = text.trim().split(".");
    return { num: BigInt(whole + decimals), den: 10n ** BigInt(decimals.length) };
  }

  // num/den rounded half up, as Decimal's ROUND_HALF_UP does for amounts >= 0.
  function roundHalfUp(num, den) {
    return (2n * num + den) / (2n * den);
  }

  // Like contracts.money.parse_major: the typed price in minor units, or null when the
  // server would refuse it (the form then shows why, on submit).
  function parsePrice(text, decimals) {
    const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(
      text.trim().replace(/,/g, "")
    );
    if (!match || match[2] + (match[3] || "") === "") {
      return null;
    }
    const [, sign, whole, fractional = "", exponent = "0"] = match;
    const power = Number(exponent) - fractional.length + decimals;
    if (Math.abs(power) > MAX_EXPONENT) {
      return null;
    }
    let minor = BigInt(whole + fractional);
    if (power >= 0) {
      minor *= 10n ** BigInt(power);
    } else {
      const divisor = 10n ** BigInt(-power);
      if (minor % divisor !== 0n) {
        return null; // more decimals than the currency has
      }
      minor /= divisor;
    }
    if (sign === "-") {
      minor = -minor;
    }
    return minor > 0n ? minor : null;
  }

  // Like wtforms' IntegerField within SESSION_COUNT_RANGE (1 to 100).
  function parseCount(text) {
    if (!/^\s*\+?\d+\s*$/.test(text)) {
      return null;
    }
    const value = BigInt(text.trim());
    return value >= 1n && value <= 100n ? value : null;
  }

  // An amount as the server shows it (Babel's en_US pattern "¤#,##0.00": the symbol, then
  // the number grouped by thousands): "$1,234.50", "¥5,000", "CHF45.00".
  function money(minor, code) {
    const decimals = currencies[code].decimals;
    const factor = 10n ** BigInt(decimals);
    let text = (minor / factor).toString().replace(/\B(?=(\d{3})+$)/g, ",");
    if (decimals > 0) {
      text += "." + (minor % factor).toString().padStart(decimals, "0");
    }
    return currencies[code].symbol + text;
  }

  function minimumFee(code) {
    const factor = 10n ** BigInt(currencies[code].decimals);
    return roundHalfUp(feeMinimum.num * factor, feeMinimum.den);
  }

  // contracts.money.quote, then the checks send_proposal makes on the total
  // (contracts.services.check_sendable).
  function preview(pricePerSession, sessions, code) {
    const total = pricePerSession * sessions;
    if (total > maxTotal) {
      return { split: null, problem: "The contract total is larger than a single payment can be." };
    }
    const percentFee = roundHalfUp(total * feePercent.num, feePercent.den * 100n);
    const atLeast = minimumFee(code);
    let fee = percentFee > atLeast ? percentFee : atLeast;
    if (fee > total) {
      fee = total;
    }
    const split = { total: total, fee: fee, earning: total - fee };
    const minCharge = BigInt(currencies[code].min_charge);
    if (total < minCharge) {
      return {
        split: split,
        problem:
          `The total must be at least ${money(minCharge, code)}, ` +
          `Stripe's minimum charge in ${code.toUpperCase()}.`,
      };
    }
    // contracts.money.check_coach_earning: the minimum fee must not take (nearly) all.
    if (split.earning * 100n * minEarning.den < minEarning.num * total) {
      return {
        split: split,
        problem:
          `The platform fee takes ${money(fee, code)} of this ${money(total, code)}, ` +
          `leaving you ${money(split.earning, code)}: a proposal must leave you at least ` +
          `${minEarningText} % of its total. Raise the price or the number of sessions.`,
      };
    }
    return { split: split, problem: null };
  }

  function show(element, text) {
    element.textContent = text;
  }

  function update() {
    const code = currency.value;
    if (!(code in currencies)) {
      return;
    }
    show(symbol, currencies[code].symbol);
    show(leastFee, money(minimumFee(code), code));
    const pricePerSession = parsePrice(price.value, currencies[code].decimals);
    const sessions = parseCount(count.value);
    const result =
      pricePerSession === null || sessions === null
        ? null
        : preview(pricePerSession, sessions, code);
    hint.hidden = result !== null;
    figures.hidden = !(result && result.split);
    problem.hidden = !(result && result.problem);
    if (result && result.split) {
      show(document.getElementById("preview-total"), money(result.split.total, code));
      show(document.getElementById("preview-fee"), money(result.split.fee, code));
      show(document.getElementById("preview-earning"), money(result.split.earning, code));
    }
    show(problem, result && result.problem ? result.problem : "");
  }

  count.addEventListener("input", update);
  price.addEventListener("input", update);
  currency.addEventListener("change", update);
  update();

  // The plan's numbers take input only while "Offer a payment plan" is ticked. A
  // disabled field is not posted; the server ignores them unticked in any case, so the
  // form works the same without this script.
  const offerPlan = form.querySelector("[name=offer_plan]");
  const planFields = form.querySelectorAll(
    "[name=plan_deposit_percent], [name=plan_max_instalments], [name=plan_minimum_total]"
  );
  function togglePlan() {
    planFields.forEach(function (field) {
      field.disabled = !offerPlan.checked;
    });
  }
  if (offerPlan) {
    offerPlan.addEventListener("change", togglePlan);
    togglePlan();
  }
})();
